//! The registry of pipelines in one binary, and the binary's entry point.

use crate::args::{Args, ArgsError};
use crate::error::BoxError;
use crate::log::{Masker, Route};
use crate::plan::Plan;
use crate::run;
use crate::settings::Settings;
use sparkwing_contract::exit;
use std::process::ExitCode;

type BuildFn = Box<dyn Fn(&Args) -> Result<Plan, BoxError>>;

struct Entry {
    name: String,
    description: String,
    build: BuildFn,
}

/// The pipelines a `.sparkwing/` binary offers, by name.
///
/// The binary is run as `<bin> <pipeline> [args…]` by `sparkwing run`, or by hand; it prints
/// `{"sdk_version", "pipelines": [{"name", "description"}]}` for `<bin> --sw-describe`.
///
/// ```no_run
/// use sparkwing::prelude::*;
///
/// fn main() -> std::process::ExitCode {
///     Pipelines::new()
///         .register("lint", "Static checks", |_args| {
///             let mut plan = Plan::new();
///             plan.job("clippy").step("clippy", Cmd::new("cargo").args(["clippy", "--", "-D", "warnings"]));
///             Ok(plan)
///         })
///         .register("bench", "Benchmarks; --rounds N", |args| {
///             args.deny_unknown(&["rounds"])?;
///             let rounds: u32 = args.parse_or("rounds", 3)?;
///             let mut plan = Plan::new();
///             plan.job("bench").step("run", Cmd::new("cargo").arg("bench").env("ROUNDS", rounds.to_string()));
///             Ok(plan)
///         })
///         .main()
/// }
/// ```
#[derive(Default)]
pub struct Pipelines {
    entries: Vec<Entry>,
}

impl std::fmt::Debug for Pipelines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|e| &e.name))
            .finish()
    }
}

/// A usage error: printed, exit 2.
fn usage(msg: impl std::fmt::Display) -> i32 {
    eprintln!("error: {msg}");
    exit::USAGE
}

impl Pipelines {
    /// No pipelines yet.
    pub fn new() -> Pipelines {
        Pipelines::default()
    }

    /// Adds pipeline `name`. `build` turns the pipeline's arguments into a [`Plan`]; returning an
    /// [`ArgsError`] (e.g. from [`Args::parse_or`]) makes the run a usage error (exit 2), any other
    /// error an orchestrator failure (exit 1).
    pub fn register<F>(mut self, name: &str, description: &str, build: F) -> Pipelines
    where
        F: Fn(&Args) -> Result<Plan, BoxError> + 'static,
    {
        self.entries.push(Entry {
            name: name.to_string(),
            description: description.to_string(),
            build: Box::new(build),
        });
        self
    }

    /// `(name, description)` of every pipeline, in registration order.
    pub fn list(&self) -> Vec<(&str, &str)> {
        self.entries
            .iter()
            .map(|e| (e.name.as_str(), e.description.as_str()))
            .collect()
    }

    /// The `--sw-describe` document.
    pub fn describe_json(&self) -> String {
        let pipelines: Vec<serde_json::Value> = self
            .entries
            .iter()
            .map(|e| serde_json::json!({"name": e.name, "description": e.description}))
            .collect();
        serde_json::json!({"sdk_version": crate::SDK_VERSION, "pipelines": pipelines}).to_string()
    }

    /// Runs the binary: reads the command line and the environment, runs the chosen pipeline,
    /// and returns the exit code for `main` to return.
    ///
    /// The process's own stdout and stderr (what step code prints with `println!`, a panic
    /// message, a program started with inherited stdio) pass through the masker too.
    pub fn main(self) -> ExitCode {
        let argv: Vec<String> = std::env::args().skip(1).collect();
        let code = self.run_impl(argv, |k| std::env::var(k).ok(), true);
        ExitCode::from(code.clamp(0, 255) as u8)
    }

    /// [`Pipelines::main`] with the arguments (without the program name) and the environment
    /// given explicitly; returns the exit code. The process's own stdout and stderr are left as
    /// they are (the caller owns them): only the run's sinks are masked.
    pub fn run_with(self, argv: Vec<String>, env: impl Fn(&str) -> Option<String>) -> i32 {
        self.run_impl(argv, env, false)
    }

    fn run_impl(
        self,
        argv: Vec<String>,
        env: impl Fn(&str) -> Option<String>,
        route_stdio: bool,
    ) -> i32 {
        let known = || {
            if self.entries.is_empty() {
                "this binary registers no pipeline".to_string()
            } else {
                let names: Vec<String> = self
                    .entries
                    .iter()
                    .map(|e| format!("`{}`", e.name))
                    .collect();
                format!("known pipelines: {}", names.join(", "))
            }
        };
        for (i, e) in self.entries.iter().enumerate() {
            if self.entries[..i].iter().any(|p| p.name == e.name) {
                return usage(format!(
                    "register pipeline `{}`: the name is registered twice",
                    e.name
                ));
            }
        }
        let Some(name) = argv.first() else {
            return usage(format!(
                "choose a pipeline: none was named\n  hint: run `<binary> <pipeline> [args…]`; {}",
                known()
            ));
        };
        if name == "--sw-describe" {
            println!("{}", self.describe_json());
            return exit::SUCCESS;
        }
        if name == "--help" || name == "-h" {
            println!("usage: <binary> <pipeline> [args…] | --sw-describe");
            for e in &self.entries {
                println!("  {:<20} {}", e.name, e.description);
            }
            return exit::SUCCESS;
        }
        let Some(entry) = self.entries.iter().find(|e| &e.name == name) else {
            return usage(format!(
                "find pipeline `{}`: no such pipeline\n  hint: {}",
                name.escape_debug(),
                known()
            ));
        };
        let settings = match Settings::from_env(&env) {
            Ok(s) => s,
            Err(e) => return usage(e),
        };
        let masker = Masker::default();
        for s in &settings.secrets {
            masker.add(s);
        }
        // Drained when dropped, on every return below: nothing printed is lost.
        let _route = route_stdio.then(|| Route::install(&masker));
        let args = Args::from_words(argv[1..].iter().cloned());
        let plan = match (entry.build)(&args) {
            Ok(p) => p,
            Err(e) => {
                if let Some(a) = e.downcast_ref::<ArgsError>() {
                    return usage(format!("read arguments of pipeline `{}`: {a}", entry.name));
                }
                eprintln!("error: build the plan of pipeline `{}`: {e}", entry.name);
                return exit::FAILURE;
            }
        };
        let plan = match plan.into_valid() {
            Ok(p) => p,
            Err(e) => return usage(format!("{e}\n  (pipeline `{}`)", entry.name)),
        };
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("sparkwing")
            .build()
        {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: start the async runtime: {e}");
                return exit::FAILURE;
            }
        };
        // The run is a task on the worker threads rather than the future of this thread: a job
        // task it starts, and the wake-up when a job ends, then stay on the worker that ran it
        // instead of crossing threads twice per job.
        let name = entry.name.clone();
        let run =
            runtime.spawn(async move { run::execute(settings, &name, &args, plan, masker).await });
        let code = match runtime.block_on(run) {
            Ok(code) => code,
            // A panic ends the process as it would have on this thread: the supervisor then
            // finalizes the run as abandoned.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => {
                eprintln!("error: the run stopped unexpectedly: {e}");
                exit::FAILURE
            }
        };
        // Everything the run must finish is finished by now: the records are committed, the
        // logs and the state delivered or spooled, and every command's process group ended.
        // What is left (idle threads, the relay's connection, a step future abandoned after its
        // stop) is not waited for: waking and joining each thread would only delay the exit.
        runtime.shutdown_background();
        code
    }
}
