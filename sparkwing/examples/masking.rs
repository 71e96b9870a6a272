//! A pipeline binary for the masking and CI-console tests: step code that prints a secret with
//! `println!`, `eprintln!`, in pieces, through an inherited child process and in a panic; and jobs
//! whose output and errors try to issue CI workflow commands.

use sparkwing::prelude::*;
use std::io::Write;

fn token() -> String {
    std::env::var("TOK").unwrap_or_default()
}

fn main() -> std::process::ExitCode {
    Pipelines::new()
        .register(
            "stdio",
            "step code writes the secret in `TOK` to its own stdout and stderr, then panics",
            |_| {
                println!("building with {}", token());
                let mut plan = Plan::new();
                plan.job("rust").step_fn("print", |ctx| async move {
                    let tok = token();
                    println!("println {tok}");
                    eprintln!("eprintln {tok}");
                    // A secret written in two pieces, the first without a newline.
                    print!("partial {}", &tok[..5]);
                    std::io::stdout().flush()?;
                    tokio::time::sleep(Duration::from_millis(150)).await;
                    println!("{}", &tok[5..]);
                    ctx.add_secret("later-registered-value");
                    println!("later {}", ["later-registered", "-value"].concat());
                    std::process::Command::new("sh")
                        .args(["-c", "echo inherited $TOK; echo inherited-err $TOK >&2"])
                        .status()?;
                    Ok(())
                });
                plan.job("panics")
                    .needs(["rust"])
                    .step_fn("panic", |_ctx| async move {
                        panic!("panicked with {}", token());
                    });
                plan.job("last")
                    .needs(["rust"])
                    .step_fn("bye", |_ctx| async {
                        print!("last words without a newline");
                        Ok(())
                    });
                Ok(plan)
            },
        )
        .register(
            "build-fails",
            "the plan cannot be built; the error names the secret",
            |_| {
                eprintln!("about to fail with {}", token());
                Err(format!("bad token {}", token()).into())
            },
        )
        .register(
            "ci-commands",
            "jobs whose output and errors try to issue CI workflow commands",
            |_| {
                let mut plan = Plan::new();
                plan.job("inject").step(
                    "print",
                    Cmd::sh(
                        "echo '::warning title=injected::x'; echo '  ::error::indented'; \
                         echo '##[warning]legacy'; echo 'fine ::warning::inside'",
                    ),
                );
                plan.job("allowed")
                    .allow_ci_commands()
                    .step("notice", Cmd::sh("echo '::notice::allowed'"));
                plan.job("fails").step_fn("fail", |_ctx| async move {
                    Err("boom\n::warning title=injected::from-error\r\n::error::again".into())
                });
                Ok(plan)
            },
        )
        .main()
}
