//! `success_before_passing`, `failures_before_warning` and
//! `failures_before_critical`: which probe results are reported.
//! Pure state machine; the periodic loop owns one per check.
//!
//! Consul's rule (its `StatusHandler`):
//! - passing and warning both count as successes; critical counts as a
//!   failure; each resets the other counter;
//! - a success is reported once `successes >= success_before_passing`;
//! - a failure is reported as critical once `failures >=
//!   failures_before_critical`, else as *warning* once `failures >=
//!   failures_before_warning` (which defaults to `failures_before_critical`);
//! - otherwise nothing is reported and the previous status stands;
//! - both counters start at their thresholds, so the very first result
//!   after (re)registration is always reported.

use super::spec::{CheckSpec, Status};

#[derive(Debug, Clone)]
pub(crate) struct StatusFilter {
    success_before_passing: u32,
    failures_before_warning: u32,
    failures_before_critical: u32,
    successes: u32,
    failures: u32,
}

impl StatusFilter {
    pub(crate) fn new(spec: &CheckSpec) -> StatusFilter {
        let failures_before_warning = if spec.failures_before_warning == 0 {
            spec.failures_before_critical
        } else {
            spec.failures_before_warning
        };
        StatusFilter {
            success_before_passing: spec.success_before_passing,
            failures_before_warning,
            failures_before_critical: spec.failures_before_critical,
            successes: spec.success_before_passing,
            failures: spec.failures_before_critical,
        }
    }

    /// The status to report for one probe result, or `None` to keep the
    /// previous one.
    pub(crate) fn filter(&mut self, status: Status) -> Option<Status> {
        match status {
            Status::Passing | Status::Warning => {
                self.successes = self.successes.saturating_add(1);
                self.failures = 0;
                (self.successes >= self.success_before_passing).then_some(status)
            }
            Status::Critical => {
                self.failures = self.failures.saturating_add(1);
                self.successes = 0;
                if self.failures >= self.failures_before_critical {
                    Some(Status::Critical)
                } else if self.failures >= self.failures_before_warning {
                    Some(Status::Warning)
                } else {
                    None
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::spec::CheckKind;
    use Status::*;

    fn filter(sbp: u32, fbw: u32, fbc: u32) -> StatusFilter {
        let mut spec = CheckSpec::new("c", CheckKind::Udp { address: String::new() });
        spec.success_before_passing = sbp;
        spec.failures_before_warning = fbw;
        spec.failures_before_critical = fbc;
        StatusFilter::new(&spec)
    }

    fn run(f: &mut StatusFilter, input: &[Status]) -> Vec<Option<Status>> {
        input.iter().map(|s| f.filter(*s)).collect()
    }

    #[test]
    fn without_thresholds_every_result_is_reported() {
        let mut f = filter(0, 0, 0);
        let input = [Passing, Critical, Warning, Critical, Passing];
        let expected: Vec<_> = input.iter().copied().map(Some).collect();
        assert_eq!(run(&mut f, &input), expected);
    }

    #[test]
    fn first_result_is_reported_then_thresholds_apply() {
        let mut f = filter(2, 0, 3);
        assert_eq!(
            run(&mut f, &[Passing, Critical, Critical, Critical, Critical, Passing, Passing, Passing]),
            vec![
                Some(Passing),
                None,
                None,
                Some(Critical),
                Some(Critical),
                None,
                Some(Passing),
                Some(Passing)
            ]
        );
    }

    #[test]
    fn an_interrupted_streak_starts_over() {
        let mut f = filter(3, 0, 3);
        assert_eq!(run(&mut f, &[Critical]), vec![Some(Critical)]);
        assert_eq!(
            run(&mut f, &[Passing, Passing, Critical, Passing, Passing]),
            vec![None, None, None, None, None]
        );
        assert_eq!(run(&mut f, &[Passing]), vec![Some(Passing)]);
        assert_eq!(run(&mut f, &[Critical, Critical, Passing, Critical, Critical]), vec![None; 5]);
        assert_eq!(run(&mut f, &[Critical]), vec![Some(Critical)]);
    }

    #[test]
    fn failures_before_warning_reports_warning_first() {
        let mut f = filter(0, 1, 3);
        assert_eq!(run(&mut f, &[Passing]), vec![Some(Passing)]);
        assert_eq!(
            run(&mut f, &[Critical, Critical, Critical, Critical]),
            vec![Some(Warning), Some(Warning), Some(Critical), Some(Critical)]
        );
    }

    #[test]
    fn warning_counts_as_success() {
        let mut f = filter(2, 0, 0);
        assert_eq!(
            run(&mut f, &[Critical, Warning, Warning, Passing]),
            vec![Some(Critical), None, Some(Warning), Some(Passing)]
        );
    }
}
