//! The plan and its validation into a DAG.

use super::job::Job;
use sparkwing_contract::id::validate_hierarchical;
use std::collections::HashMap;
use std::fmt;

/// The jobs of one pipeline run and their `needs` edges.
///
/// ```
/// use sparkwing::prelude::*;
/// let mut plan = Plan::new();
/// plan.job("setup").step("prepare", Cmd::sh("mkdir -p out"));
/// for i in 1..=3 {
///     plan.job(format!("work-{i}")).needs(["setup"]).step("run", Cmd::sh("sleep 0.1"));
/// }
/// plan.job("join").needs(["work-1", "work-2", "work-3"]);
/// assert_eq!(plan.len(), 5);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Plan {
    jobs: Vec<Job>,
    ci_commands: bool,
}

impl Plan {
    /// An empty plan.
    pub fn new() -> Plan {
        Plan::default()
    }

    /// Adds a job with this id and returns it for configuration. Ids may be hierarchical
    /// (`lint/rust`); each segment must be a safe path segment. A duplicate id is a plan error
    /// reported when the run starts.
    pub fn job(&mut self, id: impl Into<String>) -> &mut Job {
        self.jobs.push(Job::new(id));
        let last = self.jobs.len() - 1;
        &mut self.jobs[last]
    }

    /// Lets the output of every job issue workflow commands on the CI console, as
    /// [`Job::allow_ci_commands`] does for one job.
    pub fn allow_ci_commands(&mut self) -> &mut Plan {
        self.ci_commands = true;
        self
    }

    /// Number of jobs.
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// True when the plan has no job.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// The jobs, in the order they were added.
    pub fn jobs(&self) -> &[Job] {
        &self.jobs
    }

    /// Checks ids, `needs` and acyclicity, returning every problem found.
    pub fn validate(&self) -> Result<(), PlanErrors> {
        self.clone().into_valid().map(|_| ())
    }

    pub(crate) fn into_valid(mut self) -> Result<ValidPlan, PlanErrors> {
        if self.ci_commands {
            self.jobs.iter_mut().for_each(|j| j.ci_commands = true);
        }
        let mut errors = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::with_capacity(self.jobs.len());
        for (i, job) in self.jobs.iter().enumerate() {
            if let Err(e) = validate_hierarchical(&job.id) {
                errors.push(PlanError::BadId {
                    id: job.id.escape_debug().to_string(),
                    reason: e.to_string(),
                });
            }
            if index.insert(&job.id, i).is_some() {
                errors.push(PlanError::Duplicate(job.id.clone()));
            }
            for bad in job.inputs.iter().filter_map(|g| g.as_ref().err()) {
                errors.push(PlanError::BadInput {
                    job: job.id.clone(),
                    reason: bad.to_string(),
                });
            }
        }
        let mut deps: Vec<Vec<usize>> = vec![Vec::new(); self.jobs.len()];
        for (i, job) in self.jobs.iter().enumerate() {
            for need in &job.needs {
                match index.get(need.as_str()) {
                    Some(&d) if !deps[i].contains(&d) => deps[i].push(d),
                    Some(_) => {}
                    None => errors.push(PlanError::UnknownNeed {
                        job: job.id.clone(),
                        need: need.clone(),
                    }),
                }
            }
        }
        if errors.is_empty()
            && let Some(cycle) = find_cycle(&deps)
        {
            errors.push(PlanError::Cycle(
                cycle.iter().map(|&i| self.jobs[i].id.clone()).collect(),
            ));
        }
        if !errors.is_empty() {
            return Err(PlanErrors(errors));
        }
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); self.jobs.len()];
        for (i, ds) in deps.iter().enumerate() {
            for &d in ds {
                dependents[d].push(i);
            }
        }
        Ok(ValidPlan {
            jobs: self.jobs,
            deps,
            dependents,
        })
    }
}

/// A cycle as a closed path of indices (`a, b, a`), if the graph has one. Iterative DFS so a
/// 10,000-job chain cannot overflow the stack.
fn find_cycle(deps: &[Vec<usize>]) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut mark = vec![Mark::New; deps.len()];
    for root in 0..deps.len() {
        if mark[root] != Mark::New {
            continue;
        }
        // (node, next edge to look at)
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        mark[root] = Mark::Open;
        while let Some(&mut (node, ref mut edge)) = stack.last_mut() {
            if let Some(&next) = deps[node].get(*edge) {
                *edge += 1;
                match mark[next] {
                    Mark::New => {
                        mark[next] = Mark::Open;
                        stack.push((next, 0));
                    }
                    Mark::Open => {
                        let start = stack.iter().position(|&(n, _)| n == next).unwrap_or(0);
                        // `deps` edges point from a job to what it needs; print the path in
                        // that direction: `x needs y needs x`.
                        let mut path: Vec<usize> = stack[start..].iter().map(|&(n, _)| n).collect();
                        path.push(next);
                        return Some(path);
                    }
                    Mark::Done => {}
                }
            } else {
                mark[node] = Mark::Done;
                stack.pop();
            }
        }
    }
    None
}

/// A validated plan: indices of each job's dependencies and dependents.
pub(crate) struct ValidPlan {
    pub jobs: Vec<Job>,
    pub deps: Vec<Vec<usize>>,
    pub dependents: Vec<Vec<usize>>,
}

/// One problem with a plan. A usage error: the run exits 2 before starting anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// A job id is not a safe path segment.
    #[error("job id `{id}` is not usable: {reason}")]
    BadId { id: String, reason: String },
    /// Two jobs share an id.
    #[error("job `{0}` is defined more than once")]
    Duplicate(String),
    /// A glob given to [`Job::inputs`](crate::Job::inputs) is not usable.
    #[error("job `{job}` declares inputs it cannot use: {reason}")]
    BadInput { job: String, reason: String },
    /// A `needs` entry names no job.
    #[error("job `{job}` needs `{need}`, which is not a job of this plan")]
    UnknownNeed { job: String, need: String },
    /// The `needs` edges form a cycle; the path is closed (first id = last id).
    #[error("jobs form a cycle: {}", .0.iter().map(|j| format!("`{j}`")).collect::<Vec<_>>().join(" needs "))]
    Cycle(Vec<String>),
}

/// Every problem found in a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanErrors(pub Vec<PlanError>);

impl fmt::Display for PlanErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("validate the plan:")?;
        for e in &self.0 {
            write!(f, "\n  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PlanErrors {}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(plan: Plan) -> Vec<PlanError> {
        plan.into_valid().err().map(|e| e.0).unwrap_or_default()
    }

    #[test]
    fn a_valid_dag_indexes_both_directions() {
        let mut p = Plan::new();
        p.job("a");
        p.job("b").needs(["a"]);
        p.job("c").needs(["a", "b", "a"]);
        let v = p.into_valid().unwrap();
        assert_eq!(v.deps, vec![vec![], vec![0], vec![0, 1]]);
        assert_eq!(v.dependents, vec![vec![1, 2], vec![2], vec![]]);
    }

    #[test]
    fn cycles_name_the_ids_on_the_cycle() {
        let mut p = Plan::new();
        p.job("ok");
        p.job("x").needs(["y"]);
        p.job("y").needs(["x"]);
        let e = errors(p);
        assert_eq!(
            e,
            vec![PlanError::Cycle(vec!["x".into(), "y".into(), "x".into()])]
        );
        assert_eq!(
            e[0].to_string(),
            "jobs form a cycle: `x` needs `y` needs `x`"
        );

        let mut p = Plan::new();
        p.job("self").needs(["self"]);
        assert_eq!(
            errors(p),
            vec![PlanError::Cycle(vec!["self".into(), "self".into()])]
        );
    }

    #[test]
    fn unknown_needs_duplicates_and_bad_ids_are_all_reported() {
        let mut p = Plan::new();
        p.job("a").needs(["ghost"]);
        p.job("a");
        p.job("../etc");
        let e = errors(p);
        assert!(e.contains(&PlanError::Duplicate("a".into())), "{e:?}");
        assert!(e.contains(&PlanError::UnknownNeed {
            job: "a".into(),
            need: "ghost".into()
        }));
        assert!(
            matches!(e[0], PlanError::BadId { .. })
                || e.iter().any(|x| matches!(x, PlanError::BadId { .. }))
        );
        let text = PlanErrors(e).to_string();
        assert!(text.contains("`ghost`") && text.contains("`a`"), "{text}");
    }

    #[test]
    fn unusable_input_globs_are_plan_errors() {
        let mut p = Plan::new();
        p.job("build")
            .inputs(["src/**", "../outside", "/etc/passwd"]);
        let e = errors(p);
        assert_eq!(e.len(), 2, "{e:?}");
        let text = PlanErrors(e).to_string();
        assert!(
            text.contains(
                "job `build` declares inputs it cannot use: invalid path glob `../outside`"
            ),
            "{text}"
        );
        assert!(
            text.contains("`/etc/passwd`") && text.contains("relative"),
            "{text}"
        );
    }

    #[test]
    fn a_long_chain_does_not_overflow() {
        let mut p = Plan::new();
        p.job("j0");
        for i in 1..20_000 {
            p.job(format!("j{i}")).needs([format!("j{}", i - 1)]);
        }
        assert!(p.into_valid().is_ok());
    }
}
