//! A pipeline binary for the signal tests: a job that traps SIGTERM and keeps running, and one
//! that exits promptly on it.

use sparkwing::prelude::*;

fn main() -> std::process::ExitCode {
    Pipelines::new()
        .register("trap", "ignores SIGTERM until killed", |_| {
            let mut plan = Plan::new();
            plan.job("trap").step(
                "stubborn",
                // The loop counts in the shell: a `$(seq …)` subshell would not inherit the trap.
                Cmd::sh(
                    "trap 'echo trapped TERM' TERM; echo ready; i=0; while [ $i -lt 60 ]; do sleep 1 || true; i=$((i+1)); done",
                ),
            );
            plan.job("polite").step("sleep", Cmd::sh("sleep 60"));
            plan.job("later").needs(["polite"]).step("never", Cmd::sh("echo never"));
            Ok(plan)
        })
        .main()
}
