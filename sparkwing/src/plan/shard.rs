//! Which shard runs which job: a pure function of the plan, the number of shards and (when
//! known) how long each job took before, so every shard computes the same answer on its own.

use super::ValidPlan;
use sparkwing_contract::shard::{Assigned, Assignment};
use std::collections::HashMap;

/// Assigns every job of `plan` to one of `shards` shards.
///
/// A job pinned with [`Job::on_shard`](crate::Job::on_shard) goes to its shard. The others are
/// placed heaviest first (by `weights`, the seconds each job took in an earlier run; 1 when
/// unknown) on the least-loaded shard, preferring, among equally loaded shards, one that runs a
/// job it needs (fewer waits across shards), then the lowest index. Ties between jobs keep plan
/// order, so the result depends on nothing but the inputs.
pub(crate) fn assign(
    plan: &ValidPlan,
    pipeline: &str,
    shards: u32,
    weights: &HashMap<String, f64>,
) -> Result<Assignment, String> {
    let n = plan.jobs.len();
    let mut on: Vec<u32> = vec![0; n];
    let mut load = vec![0f64; shards as usize + 1];
    let weight = |i: usize| {
        weights
            .get(&plan.jobs[i].id)
            .copied()
            .filter(|w| w.is_finite() && *w > 0.0)
            .unwrap_or(1.0)
    };
    let mut errors = Vec::new();
    for (i, job) in plan.jobs.iter().enumerate() {
        if let Some(s) = job.shard {
            if s == 0 || s > shards {
                errors.push(format!(
                    "job `{}` is pinned to shard {s} with `.on_shard({s})`, but this run has {shards} shard(s) (1..={shards}); run with more shards or change the pin",
                    job.id
                ));
                continue;
            }
            on[i] = s;
            load[s as usize] += weight(i);
        }
    }
    if !errors.is_empty() {
        return Err(errors.join("\n"));
    }
    let mut free: Vec<usize> = (0..n).filter(|&i| on[i] == 0).collect();
    // Heaviest first; the stable sort keeps plan order among equals.
    free.sort_by(|&a, &b| weight(b).total_cmp(&weight(a)));
    for i in free {
        let least = (1..=shards as usize)
            .map(|s| load[s])
            .fold(f64::INFINITY, f64::min);
        let candidates: Vec<u32> = (1..=shards)
            .filter(|&s| load[s as usize] <= least + 1e-9)
            .collect();
        let near = candidates
            .iter()
            .copied()
            .find(|&s| plan.deps[i].iter().any(|&d| on[d] == s));
        let s = near.unwrap_or(candidates[0]);
        on[i] = s;
        load[s as usize] += weight(i);
    }
    Ok(Assignment {
        pipeline: pipeline.to_string(),
        shards,
        jobs: plan
            .jobs
            .iter()
            .enumerate()
            .map(|(i, j)| Assigned {
                id: j.id.clone(),
                shard: on[i],
                deps: plan.deps[i]
                    .iter()
                    .map(|&d| plan.jobs[d].id.clone())
                    .collect(),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Cmd, Plan};

    fn plan() -> ValidPlan {
        let mut p = Plan::new();
        p.job("setup").step("s", Cmd::sh("true"));
        for i in 1..=7 {
            p.job(format!("w{i}"))
                .needs(["setup"])
                .step("s", Cmd::sh("true"));
        }
        p.job("deploy").on_shard(3).needs(["w1"]);
        p.into_valid().unwrap()
    }

    #[test]
    fn the_same_plan_and_count_give_the_same_balanced_assignment() {
        let a = assign(&plan(), "ci", 3, &HashMap::new()).unwrap();
        for _ in 0..5 {
            assert_eq!(assign(&plan(), "ci", 3, &HashMap::new()).unwrap(), a);
        }
        assert_eq!(a.shard_of("deploy"), Some(3), "a pin wins");
        let mut count = [0; 4];
        for j in &a.jobs {
            count[j.shard as usize] += 1;
        }
        assert_eq!(&count[1..], &[3, 3, 3], "{a:?}");
    }

    #[test]
    fn durations_balance_the_load() {
        let weights: HashMap<String, f64> =
            [("w1".to_string(), 10.0), ("w2".to_string(), 10.0)].into();
        let a = assign(&plan(), "ci", 3, &weights).unwrap();
        let (s1, s2) = (a.shard_of("w1").unwrap(), a.shard_of("w2").unwrap());
        assert_ne!(s1, s2, "the two long jobs are apart: {a:?}");
        // The short jobs fill the third shard (which already holds `deploy`).
        let third = 6 - s1 - s2;
        let short_on_third = a
            .jobs
            .iter()
            .filter(|j| j.shard == third && j.id != "deploy")
            .count();
        assert!(short_on_third >= 5, "{a:?}");
    }

    #[test]
    fn a_pin_beyond_the_shard_count_is_an_error_naming_the_job() {
        let e = assign(&plan(), "ci", 2, &HashMap::new()).unwrap_err();
        assert!(e.contains("`deploy`") && e.contains("on_shard(3)"), "{e}");
    }
}
