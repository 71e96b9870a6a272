//! A pipeline binary for the ci-embedded tests and benchmarks: chatty jobs, an artifact handed
//! from one job to the next, and a slow job to cancel or to outlive a storage outage.

use sparkwing::prelude::*;

fn main() -> std::process::ExitCode {
    Pipelines::new()
        .register(
            "ci",
            "build logs 3000 lines over ~3 s and saves an artifact; test loads it",
            |_| {
                let mut plan = Plan::new();
                plan.job("build")
                    .step(
                        "compile",
                        Cmd::sh(
                            "for i in $(seq 1 3000); do echo \"build line $i\"; \
                             if [ $((i % 100)) = 0 ]; then sleep 0.1; fi; done",
                        ),
                    )
                    .step_fn("package", |ctx| async move {
                        let key = format!("ci/{}/app.txt", ctx.run_id());
                        std::fs::write(ctx.work_dir().join("app.txt"), "app 1.0\n")?;
                        ctx.save_artifact_file(&key, "app.txt").await?;
                        ctx.set_output("artifact", &key)?;
                        Ok(())
                    });
                plan.job("test")
                    .needs(["build"])
                    .step_fn("check", |ctx| async move {
                        let key: String = ctx.output("build", "artifact")?;
                        let n = ctx.load_artifact_file(&key, "loaded/app.txt").await?;
                        let text = std::fs::read_to_string(ctx.work_dir().join("loaded/app.txt"))?;
                        if text != "app 1.0\n" {
                            return Err(format!("artifact `{key}` holds {text:?}").into());
                        }
                        ctx.info(format!("artifact ok ({n} bytes)"));
                        Ok(())
                    });
                plan.job("lint")
                    .step("clippy", Cmd::sh("echo linting; echo 'warning: x' >&2"));
                Ok(plan)
            },
        )
        .register(
            "slow",
            "prints `ready`, then a line every 100 ms; --seconds N (default 20)",
            |args| {
                args.deny_unknown(&["seconds"])?;
                let seconds: u32 = args.parse_or("seconds", 20)?;
                let mut plan = Plan::new();
                plan.job("slow").step(
                    "tick",
                    Cmd::sh(format!(
                        "echo ready; for i in $(seq 1 {}); do echo \"tick $i\"; sleep 0.1; done",
                        seconds * 10
                    )),
                );
                Ok(plan)
            },
        )
        .register(
            "lines",
            "one job printing --count N lines (default 1000000)",
            |args| {
                args.deny_unknown(&["count"])?;
                let count: u64 = args.parse_or("count", 1_000_000)?;
                let mut plan = Plan::new();
                plan.job("print").step(
                    "seq",
                    Cmd::new("seq").args(["1".to_string(), count.to_string()]),
                );
                Ok(plan)
            },
        )
        .register(
            "wide",
            "--count N jobs (default 1000), each printing one line",
            |args| {
                args.deny_unknown(&["count"])?;
                let count: u32 = args.parse_or("count", 1000)?;
                let mut plan = Plan::new();
                for i in 0..count {
                    plan.job(format!("job-{i}"))
                        .step_fn("say", move |ctx| async move {
                            ctx.info(format!("job {i}"));
                            Ok(())
                        });
                }
                Ok(plan)
            },
        )
        .main()
}
