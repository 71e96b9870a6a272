//! Jobs and their steps.

use super::cmd::Cmd;
use crate::ctx::{JobCtx, Upstream};
use crate::error::StepResult;
use sparkwing_contract::glob::{Glob, GlobError};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

pub(crate) type StepFuture = Pin<Box<dyn Future<Output = StepResult> + Send + 'static>>;
pub(crate) type StepFn = Arc<dyn Fn(JobCtx) -> StepFuture + Send + Sync>;

/// What a step does.
#[derive(Clone)]
pub(crate) enum StepKind {
    Cmd(Cmd),
    Fn(StepFn),
}

/// One named step of a job.
#[derive(Clone)]
pub(crate) struct Step {
    pub name: String,
    pub kind: StepKind,
}

/// A skip condition, evaluated when the job becomes ready to run.
#[derive(Clone)]
pub(crate) struct Skip {
    pub reason: String,
    pub when: Arc<dyn Fn(&Upstream) -> bool + Send + Sync>,
}

/// The body of a step, opaque outside this crate.
#[doc(hidden)]
pub struct StepBody(pub(crate) StepKind);

/// Anything [`Job::step`] accepts: a [`Cmd`], or an async function of the job's [`JobCtx`].
pub trait IntoStep {
    #[doc(hidden)]
    fn into_step_body(self) -> StepBody;
}

impl IntoStep for Cmd {
    fn into_step_body(self) -> StepBody {
        StepBody(StepKind::Cmd(self))
    }
}

impl<F, Fut> IntoStep for F
where
    F: Fn(JobCtx) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = StepResult> + Send + 'static,
{
    fn into_step_body(self) -> StepBody {
        StepBody(StepKind::Fn(Arc::new(move |ctx| Box::pin(self(ctx)))))
    }
}

/// A node of the plan: steps run in order; the job succeeds when all of them do.
///
/// Built through [`Plan::job`](crate::Plan::job); every method returns `&mut Job` so calls chain.
///
/// ```
/// use sparkwing::prelude::*;
/// let mut plan = Plan::new();
/// plan.job("build")
///     .env("RUSTFLAGS", "-D warnings")
///     .step("compile", Cmd::new("cargo").arg("build"))
///     .step("size", Cmd::sh("du -sh target"));
/// plan.job("deploy")
///     .needs(["build"])
///     .retries(1)
///     .timeout(Duration::from_secs(600))
///     .skip_if("not on main", |_up| std::env::var("BRANCH").as_deref() != Ok("main"))
///     .step_fn("push", |ctx| async move {
///         ctx.info("pushing");
///         ctx.run(&Cmd::sh("echo pushed")).await?;
///         Ok(())
///     });
/// ```
#[derive(Clone)]
pub struct Job {
    pub(crate) id: String,
    pub(crate) needs: Vec<String>,
    pub(crate) steps: Vec<Step>,
    pub(crate) retries: u32,
    pub(crate) timeout: Option<Duration>,
    pub(crate) skip: Option<Skip>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) dir: Option<PathBuf>,
    /// Whether the job's output may issue CI workflow commands (GitHub Actions).
    pub(crate) ci_commands: bool,
    /// The paths the job reads ([`Job::inputs`]), checked when the plan is validated.
    pub(crate) inputs: Vec<Result<Glob, GlobError>>,
    /// The shard this job must run on in a sharded run (1-based), set by [`Job::on_shard`].
    pub(crate) shard: Option<u32>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("id", &self.id)
            .field("needs", &self.needs)
            .field(
                "steps",
                &self.steps.iter().map(|s| &s.name).collect::<Vec<_>>(),
            )
            .field("retries", &self.retries)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Job {
    pub(crate) fn new(id: impl Into<String>) -> Job {
        Job {
            id: id.into(),
            needs: Vec::new(),
            steps: Vec::new(),
            retries: 0,
            timeout: None,
            skip: None,
            env: Vec::new(),
            dir: None,
            ci_commands: false,
            inputs: Vec::new(),
            shard: None,
        }
    }

    /// The job's id (its node id in records and logs).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Jobs that must succeed (or be skipped) before this one starts. Adds to earlier calls.
    pub fn needs<I, S>(&mut self, ids: I) -> &mut Job
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.needs.extend(ids.into_iter().map(Into::into));
        self
    }

    /// Appends a step: a [`Cmd`], or an async function `|ctx: JobCtx| async move { …; Ok(()) }`.
    pub fn step(&mut self, name: impl Into<String>, step: impl IntoStep) -> &mut Job {
        self.steps.push(Step {
            name: name.into(),
            kind: step.into_step_body().0,
        });
        self
    }

    /// Appends an async function step. Same as [`Job::step`] with a closure, but the closure's
    /// argument type is inferred, so `|ctx| async move { … }` needs no annotation.
    pub fn step_fn<F, Fut>(&mut self, name: impl Into<String>, f: F) -> &mut Job
    where
        F: Fn(JobCtx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = StepResult> + Send + 'static,
    {
        self.step(name, f)
    }

    /// Runs the job up to `n` more times after a failure. [`JobCtx::attempt`] tells the attempt.
    pub fn retries(&mut self, n: u32) -> &mut Job {
        self.retries = n;
        self
    }

    /// Fails an attempt that runs longer than `limit`: its processes get SIGTERM, then SIGKILL
    /// after the grace period; the failure reason is `timeout`.
    pub fn timeout(&mut self, limit: Duration) -> &mut Job {
        self.timeout = Some(limit);
        self
    }

    /// Skips the job when `when` returns true. Evaluated once, when every job it needs is done,
    /// with their outputs in hand; a skipped job counts as satisfied for its dependents.
    pub fn skip_if<F>(&mut self, reason: impl Into<String>, when: F) -> &mut Job
    where
        F: Fn(&Upstream) -> bool + Send + Sync + 'static,
    {
        self.skip = Some(Skip {
            reason: reason.into(),
            when: Arc::new(when),
        });
        self
    }

    /// Sets an environment variable for every command of this job.
    pub fn env(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Job {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Runs this job's commands in `dir` (relative to the repository root) unless a command sets
    /// its own.
    pub fn dir(&mut self, dir: impl Into<PathBuf>) -> &mut Job {
        self.dir = Some(dir.into());
        self
    }

    /// Declares the files the job depends on, as globs relative to the repository root (`*`
    /// within a path segment, `**` across segments, a directory for everything below it). Adds
    /// to earlier calls.
    ///
    /// A job with inputs runs only when something it depends on changed since its last success
    /// in this sparkwing home: the content of a file matching the globs (added, removed or
    /// edited), the pipeline binary, the run's arguments, or the outputs of the jobs it needs.
    /// Otherwise it is recorded `cached`, with the run whose result it reuses, and its outputs
    /// and artifacts are that run's. Without `inputs`, a job runs every time.
    ///
    /// ```
    /// use sparkwing::prelude::*;
    /// let mut plan = Plan::new();
    /// plan.job("test")
    ///     .inputs(["src/**", "Cargo.toml", "Cargo.lock"])
    ///     .step("test", Cmd::new("cargo").arg("test"));
    /// ```
    pub fn inputs<I, S>(&mut self, globs: I) -> &mut Job
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.inputs
            .extend(globs.into_iter().map(|g| Glob::parse(g.as_ref())));
        self
    }

    /// Runs this job on shard `index` (1-based) when the run is split across CI jobs with
    /// `--sw-shard=I/N`; without it the job goes wherever the balanced assignment puts it. Ignored
    /// in a run of one process. A run with fewer shards than `index` stops before any job with a
    /// plan error naming the job.
    ///
    /// ```
    /// use sparkwing::prelude::*;
    /// let mut plan = Plan::new();
    /// plan.job("build").on_shard(1).step("compile", Cmd::sh("make"));
    /// plan.job("e2e").on_shard(2).needs(["build"]).step("test", Cmd::sh("make e2e"));
    /// ```
    pub fn on_shard(&mut self, index: u32) -> &mut Job {
        self.shard = Some(index);
        self
    }

    /// Lets this job's output issue workflow commands on the CI console (GitHub Actions:
    /// `::add-mask::`, `::warning::`, `::group::`, …).
    ///
    /// By default a job's output cannot: on GitHub Actions it is printed between
    /// `::stop-commands::<random token>` and `::<token>::`, and its lines that begin with `::` or
    /// hold `##[` are defused, so a tool that echoes untrusted text (a commit message, a test name)
    /// cannot annotate, mask or fold the console. Opt in only for jobs that run tools written to
    /// talk to the runner (an action toolkit, a problem matcher's feeder).
    ///
    /// ```
    /// use sparkwing::prelude::*;
    /// let mut plan = Plan::new();
    /// plan.job("annotate")
    ///     .allow_ci_commands()
    ///     .step("report", Cmd::sh("echo '::notice title=coverage::92%'"));
    /// ```
    pub fn allow_ci_commands(&mut self) -> &mut Job {
        self.ci_commands = true;
        self
    }
}
