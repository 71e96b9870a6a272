//! This repository's pipelines. `sparkwing run {{name}}` builds this binary and runs the
//! pipeline below; add more with further `.register(…)` calls.

use sparkwing::prelude::*;

fn main() -> std::process::ExitCode {
    Pipelines::new()
        .register("{{name}}", "Build, then test", |_args| {
            let mut plan = Plan::new();
            plan.job("build")
                .step("compile", Cmd::sh("echo building"))
                .step_fn("version", |ctx| async move {
                    let version = ctx.capture(&Cmd::sh("echo 0.1.0")).await?;
                    ctx.set_output("version", &version)?;
                    Ok(())
                });
            plan.job("test")
                .needs(["build"])
                .step_fn("check", |ctx| async move {
                    let version: String = ctx.output("build", "version")?;
                    ctx.info(format!("testing version {version}"));
                    ctx.run(&Cmd::sh("echo tests pass")).await?;
                    Ok(())
                });
            Ok(plan)
        })
        .main()
}
