//! Hand-made histories with exact verdicts for every lincheck checker:
//! linearizable ones (overlapping ops with several valid orders, indeterminate
//! writes that did and did not take effect, CAS chains) and broken ones (stale
//! read, double CAS, invented value, lost write, lock overlap), through the
//! public API only.

use std::collections::BTreeMap;
use std::time::Duration;

use lincheck::locks::{check_mutual_exclusion, LockHold, LockViolation};
use lincheck::properties::{check_durability, check_no_phantom_reads, LostReason, PhantomReason};
use lincheck::{
    check_linearizability, read_jsonl, write_jsonl, Budget, BudgetExceeded, Call, CheckError, CheckOptions,
    KeyVerdict, Operation, Outcome, ReadMode, RegisterValue, Report, Ret, Verdict, Violation,
};

// ---- history builders: client, key "k" unless given, [invoke, complete] ----

fn ok(client: u64, call: Call, inv: u64, done: u64, ret: Ret) -> Operation {
    Operation { client, call, invoked_at: inv, outcome: Outcome::Ok { completed_at: done, ret } }
}
fn unknown(client: u64, call: Call, inv: u64) -> Operation {
    Operation {
        client,
        call,
        invoked_at: inv,
        outcome: Outcome::Indeterminate { gave_up_at: None, error: "timeout".into() },
    }
}
fn failed(client: u64, call: Call, inv: u64, done: u64) -> Operation {
    Operation {
        client,
        call,
        invoked_at: inv,
        outcome: Outcome::Failed { completed_at: done, error: "400".into() },
    }
}
fn write_call(v: &str) -> Call {
    Call::Write { key: "k".into(), value: v.into() }
}
fn cas_call(expected: Option<&str>, new: &str) -> Call {
    Call::Cas { key: "k".into(), expected: expected.map(String::from), expected_index: None, new: new.into() }
}
fn w(c: u64, v: &str, inv: u64, done: u64) -> Operation {
    ok(c, write_call(v), inv, done, Ret::Done)
}
fn w_unknown(c: u64, v: &str, inv: u64) -> Operation {
    unknown(c, write_call(v), inv)
}
fn read_mode(c: u64, mode: ReadMode, v: Option<&str>, inv: u64, done: u64) -> Operation {
    ok(
        c,
        Call::Read { key: "k".into(), mode },
        inv,
        done,
        Ret::Read { value: v.map(String::from), index: None },
    )
}
fn r(c: u64, v: Option<&str>, inv: u64, done: u64) -> Operation {
    read_mode(c, ReadMode::Consistent, v, inv, done)
}
fn cas(c: u64, expected: Option<&str>, new: &str, inv: u64, done: u64, swapped: bool) -> Operation {
    ok(c, cas_call(expected, new), inv, done, Ret::Cas { swapped })
}
fn cas_unknown(c: u64, expected: Option<&str>, new: &str, inv: u64) -> Operation {
    unknown(c, cas_call(expected, new), inv)
}
fn del(c: u64, inv: u64, done: u64) -> Operation {
    ok(c, Call::Delete { key: "k".into() }, inv, done, Ret::Done)
}
fn del_unknown(c: u64, inv: u64) -> Operation {
    unknown(c, Call::Delete { key: "k".into() }, inv)
}

fn check(history: &[Operation]) -> Report {
    check_linearizability(history, &CheckOptions::default()).unwrap()
}

fn assert_linearizable(history: &[Operation]) -> Report {
    let report = check(history);
    assert_eq!(report.verdict(), Verdict::Linearizable, "{report}");
    report
}

/// Asserts the single key is not linearizable and returns its explanation.
fn violation(history: &[Operation]) -> Violation {
    let report = check(history);
    assert_eq!(report.verdict(), Verdict::NotLinearizable, "{report}");
    let v: Vec<_> = report.violations().cloned().collect();
    assert_eq!(v.len(), 1, "{report}");
    v[0].clone()
}

fn val(v: &str) -> RegisterValue {
    RegisterValue::Value(v.into())
}

// ---------------------------- linearizable ----------------------------

#[test]
fn sequential_register_with_every_operation() {
    let h = vec![
        r(1, None, 0, 1),
        w(1, "a", 2, 3),
        r(2, Some("a"), 4, 5),
        cas(1, Some("a"), "b", 6, 7, true),
        cas(2, Some("a"), "c", 8, 9, false),
        r(2, Some("b"), 10, 11),
        del(1, 12, 13),
        r(2, None, 14, 15),
        cas(1, None, "d", 16, 17, true),
        r(1, Some("d"), 18, 19),
    ];
    let report = assert_linearizable(&h);
    assert_eq!(report.keys.len(), 1);
    assert_eq!(report.keys[0].stats.ops_checked, h.len());
}

#[test]
fn overlapping_writes_and_reads_have_several_valid_orders() {
    // a and b overlap; reads inside the window see both values in either
    // order, and the read after both may see either final value.
    for (mid1, mid2, last) in
        [("a", "b", "b"), ("b", "a", "a"), ("a", "a", "a"), ("b", "b", "b"), ("a", "b", "b")]
    {
        let h = vec![
            w(1, "a", 0, 10),
            w(2, "b", 0, 10),
            r(3, Some(mid1), 1, 5),
            r(4, Some(mid2), 6, 9),
            r(5, Some(last), 11, 12),
        ];
        assert_linearizable(&h);
    }
    // A read overlapping a write may see the old or the new value.
    assert_linearizable(&[w(1, "a", 0, 1), w(1, "b", 5, 10), r(2, Some("a"), 6, 7), r(3, Some("b"), 6, 7)]);
    // Touching intervals (return time == next invocation) count as concurrent.
    assert_linearizable(&[w(1, "a", 0, 5), r(2, None, 5, 6)]);
}

#[test]
fn indeterminate_write_that_took_effect() {
    let h = vec![w(1, "a", 0, 1), w_unknown(2, "x", 2), r(3, Some("x"), 10, 11), r(3, Some("x"), 12, 13)];
    let report = assert_linearizable(&h);
    assert_eq!(report.keys[0].stats.ops_resolved, 1, "the read proves x took effect");
    // It may even take effect long after the client gave up, after later writes.
    assert_linearizable(&[
        w_unknown(2, "x", 0),
        w(1, "a", 5, 6),
        r(3, Some("a"), 7, 8),
        r(3, Some("x"), 100, 101),
    ]);
}

#[test]
fn indeterminate_write_that_never_took_effect() {
    let h = vec![w(1, "a", 0, 1), w_unknown(2, "x", 2), r(3, Some("a"), 10, 11), r(3, Some("a"), 20, 21)];
    let report = assert_linearizable(&h);
    assert_eq!(report.keys[0].stats.ops_indeterminate, 1);
    // Many timed-out deletes and writes, none visible.
    let mut h = vec![w(1, "a", 0, 1)];
    for i in 0..40 {
        h.push(del_unknown(2, 2 + i));
        h.push(w_unknown(3, &format!("lost{i}"), 2 + i));
    }
    h.push(r(4, Some("a"), 100, 101));
    assert_linearizable(&h);
}

#[test]
fn indeterminate_delete_explains_a_later_absent_read() {
    assert_linearizable(&[w(1, "a", 0, 1), del_unknown(2, 2), r(3, None, 5, 6)]);
}

#[test]
fn cas_chain_with_concurrent_competitors() {
    let h = vec![
        cas(1, None, "v0", 0, 1, true),
        cas(1, Some("v0"), "v1", 2, 3, true),
        cas(2, Some("v1"), "v2", 4, 10, true),
        cas(3, Some("v1"), "v3", 5, 9, false), // lost the race to v2
        cas(4, Some("v0"), "v4", 11, 12, false),
        r(1, Some("v2"), 13, 14),
        cas(5, Some("v2"), "v5", 15, 20, true),
        cas(6, Some("v5"), "v6", 16, 21, true), // ran right after v5 won
        r(1, Some("v6"), 22, 23),
    ];
    assert_linearizable(&h);
}

#[test]
fn indeterminate_cas_that_did_and_did_not_take_effect() {
    // Observed: it swapped.
    assert_linearizable(&[w(1, "a", 0, 1), cas_unknown(2, Some("a"), "b", 2), r(3, Some("b"), 10, 11)]);
    // Not observed: it did not (or its value was overwritten).
    assert_linearizable(&[w(1, "a", 0, 1), cas_unknown(2, Some("a"), "b", 2), r(3, Some("a"), 10, 11)]);
    // A later CAS that failed is explained by the unknown one having swapped.
    assert_linearizable(&[
        w(1, "a", 0, 1),
        cas_unknown(2, Some("a"), "b", 2),
        cas(3, Some("a"), "c", 10, 11, false),
    ]);
}

#[test]
fn failed_ops_stale_reads_and_unknown_reads_are_not_constraints() {
    let h = vec![
        w(1, "a", 0, 1),
        failed(2, write_call("b"), 2, 3),
        read_mode(3, ReadMode::Stale, None, 4, 5),
        unknown(4, Call::Read { key: "k".into(), mode: ReadMode::Consistent }, 4),
        r(5, Some("a"), 6, 7),
    ];
    let report = assert_linearizable(&h);
    assert_eq!(report.keys[0].stats.ops_skipped, 3);
}

#[test]
fn default_reads_are_checked_unless_disabled() {
    let h = vec![w(1, "a", 0, 1), w(1, "b", 2, 3), read_mode(2, ReadMode::Default, Some("a"), 4, 5)];
    assert_eq!(check(&h).verdict(), Verdict::NotLinearizable);
    let lenient = CheckOptions { check_default_reads: false, ..CheckOptions::default() };
    assert_eq!(check_linearizability(&h, &lenient).unwrap().verdict(), Verdict::Linearizable);
}

#[test]
fn keys_are_independent_registers() {
    let other = |mut op: Operation| {
        match &mut op.call {
            Call::Read { key, .. }
            | Call::Write { key, .. }
            | Call::Cas { key, .. }
            | Call::Delete { key } => *key = "j".into(),
        }
        op
    };
    // "a" is written on both keys; values only need to be unique per key.
    let h = vec![
        w(1, "a", 0, 1),
        other(w(2, "a", 0, 1)),
        other(w(2, "b", 2, 3)),
        r(3, Some("a"), 4, 5),
        other(r(3, Some("a"), 4, 5)),
    ];
    let report = check(&h);
    assert_eq!(report.verdict(), Verdict::NotLinearizable);
    assert!(matches!(report.keys[0].verdict, KeyVerdict::NotLinearizable(_)), "key j is stale");
    assert_eq!(report.keys[0].key, "j");
    assert_eq!(report.keys[1].verdict, KeyVerdict::Linearizable);
}

// ---------------------------- violations ----------------------------

#[test]
fn stale_read_after_a_completed_write() {
    let h = vec![w(1, "a", 0, 1), w(1, "b", 2, 3), r(2, Some("a"), 4, 5)];
    let v = violation(&h);
    assert_eq!(v.key, "k");
    assert_eq!(v.blocked.index, 2);
    assert_eq!(v.possible_values, vec![val("b")]);
    assert_eq!(v.prefix_len, 2);
    assert_eq!(v.prefix_tail.iter().map(|s| s.op.index).collect::<Vec<_>>(), vec![0, 1]);
    assert_eq!(v.prefix_tail[1].value_after, val("b"));
    assert!(v.concurrent.is_empty());
    let text = v.to_string();
    assert!(
        text.contains(r#"key "k" is not linearizable"#)
            && text.contains(r#"#2 client 2: read(consistent) "k" = "a" [4, 5]"#),
        "{text}"
    );
}

#[test]
fn two_cas_from_the_same_expected_value_both_succeed() {
    let h = vec![w(1, "a", 0, 1), cas(2, Some("a"), "b", 2, 5, true), cas(3, Some("a"), "c", 3, 6, true)];
    let v = violation(&h);
    assert!(v.blocked.index == 1 || v.blocked.index == 2, "{v}");
    assert_eq!(v.concurrent.len(), 1, "the other CAS overlaps: {v}");
}

#[test]
fn read_of_a_never_written_value() {
    let h = vec![w(1, "a", 0, 1), r(2, Some("zzz"), 2, 3)];
    let v = violation(&h);
    assert_eq!(v.blocked.index, 1);
    assert_eq!(v.possible_values, vec![val("a")]);
    let phantoms = check_no_phantom_reads(&h);
    assert_eq!(phantoms.len(), 1);
    assert_eq!(phantoms[0].reason, PhantomReason::NeverWritten);
}

#[test]
fn observed_indeterminate_write_cannot_be_undone() {
    // x took effect before 11, so a later read cannot go back to a.
    let v =
        violation(&[w(1, "a", 0, 1), w_unknown(2, "x", 2), r(3, Some("x"), 10, 11), r(3, Some("a"), 20, 21)]);
    assert_eq!(v.blocked.index, 3);
    assert_eq!(v.possible_values, vec![val("x")]);
    // An indeterminate delete that was observed cannot be undone either.
    let v = violation(&[w(1, "a", 0, 1), del_unknown(2, 2), r(3, None, 5, 6), r(3, Some("a"), 7, 8)]);
    assert_eq!(v.blocked.index, 3);
}

#[test]
fn read_from_the_future() {
    // The read returned before the only write of "a" was invoked.
    let h = vec![r(1, Some("a"), 0, 1), w_unknown(2, "a", 5)];
    assert_eq!(check(&h).verdict(), Verdict::NotLinearizable);
    let phantoms = check_no_phantom_reads(&h);
    assert!(
        matches!(&phantoms[0].reason, PhantomReason::WrittenAfterRead(w) if w[0].index == 1),
        "{phantoms:?}"
    );
}

#[test]
fn failed_cas_whose_value_appears() {
    let h = vec![
        w(1, "a", 0, 1),
        cas(2, Some("a"), "b", 2, 3, false),
        read_mode(3, ReadMode::Stale, Some("b"), 4, 5),
    ];
    let phantoms = check_no_phantom_reads(&h);
    assert_eq!(phantoms.len(), 1);
    assert!(matches!(phantoms[0].reason, PhantomReason::WrittenOnlyByFailedOps(_)));
    // And a CAS that answered false while the key held its expected value.
    let v = violation(&[w(1, "a", 0, 1), cas(2, Some("a"), "b", 2, 3, false)]);
    assert_eq!(v.blocked.index, 1);
}

#[test]
fn budget_exhaustion_is_unknown_not_a_hang() {
    // Many overlapping writes and a read of none of them force a full search.
    let mut h: Vec<Operation> = (0..14).map(|i| w(i, &format!("v{i}"), 0, 100)).collect();
    h.push(r(99, Some("v0"), 101, 102));
    h.push(r(99, Some("nope"), 103, 104));
    let tight = CheckOptions {
        budget: Budget { max_steps_per_key: 50, time_limit: None },
        ..CheckOptions::default()
    };
    let report = check_linearizability(&h, &tight).unwrap();
    assert_eq!(report.verdict(), Verdict::Unknown);
    assert_eq!(report.keys[0].verdict, KeyVerdict::Unknown(BudgetExceeded::Steps(50)));
    let timed = CheckOptions {
        budget: Budget { max_steps_per_key: u64::MAX, time_limit: Some(Duration::ZERO) },
        ..CheckOptions::default()
    };
    let mut long: Vec<Operation> = (0..2000).map(|i| w(i, &format!("v{i}"), i * 2, i * 2 + 1)).collect();
    long.push(r(1, Some("v0"), 5000, 5001));
    let report = check_linearizability(&long, &timed).unwrap();
    assert_eq!(report.verdict(), Verdict::Unknown, "{report}");
}

#[test]
fn duplicate_values_break_the_contract() {
    let h = vec![w(1, "a", 0, 1), w(2, "a", 2, 3)];
    let err = check_linearizability(&h, &CheckOptions::default()).unwrap_err();
    assert_eq!(err, CheckError::DuplicateValue { key: "k".into(), value: "a".into(), first: 0, second: 1 });
    assert!(err.to_string().contains("must write unique values"));
}

// ---------------------------- durability ----------------------------

fn finals(v: Option<&str>) -> BTreeMap<String, Option<String>> {
    BTreeMap::from([("k".to_string(), v.map(String::from))])
}

#[test]
fn durability_accepts_final_value_or_possible_overwrite() {
    let h = vec![w(1, "a", 0, 1), w(1, "b", 2, 3), w_unknown(2, "c", 4), failed(3, write_call("d"), 5, 6)];
    assert!(check_durability(&h, &finals(Some("b"))).is_ok());
    assert!(check_durability(&h, &finals(Some("c"))).is_ok(), "the unknown write may have landed last");
    // Concurrent writes: either may be final.
    let h = vec![w(1, "a", 0, 10), w(2, "b", 1, 9)];
    assert!(check_durability(&h, &finals(Some("a"))).is_ok());
    assert!(check_durability(&h, &finals(Some("b"))).is_ok());
    let h = vec![w(1, "a", 0, 1), del_unknown(2, 2)];
    assert!(check_durability(&h, &finals(None)).is_ok());
}

#[test]
fn lost_acknowledged_write_is_reported() {
    let h = vec![w(1, "a", 0, 1), w(1, "b", 2, 3)];
    let report = check_durability(&h, &finals(Some("a")));
    assert_eq!(report.lost.len(), 1);
    assert_eq!(report.lost[0].write.index, 1);
    assert!(matches!(&report.lost[0].reason, LostReason::FinalValueIsOlder { writer } if writer.index == 0));
    // Ended absent with no delete after the write.
    let h = vec![del(1, 0, 1), w(1, "a", 2, 3)];
    let report = check_durability(&h, &finals(None));
    assert_eq!(report.lost.len(), 1);
    assert_eq!(report.lost[0].reason, LostReason::NoLaterDelete);
    // A final value nobody wrote, or written only by a failed op.
    let h = vec![w(1, "a", 0, 1), failed(2, write_call("b"), 2, 3)];
    let report = check_durability(&h, &finals(Some("b")));
    assert_eq!(report.phantom_finals, vec![("k".to_string(), "b".to_string())]);
    // A key never read back is listed, not judged.
    let report = check_durability(&h, &BTreeMap::new());
    assert_eq!(report.keys_without_final_value, vec!["k".to_string()]);
    assert!(report.is_ok());
}

// ---------------------------- locks ----------------------------

#[test]
fn lock_overlap_is_reported() {
    let hold = |holder: &str, a: u64, rel: Option<u64>| LockHold {
        lock: "locks/leader".into(),
        holder: holder.into(),
        acquired_at: a,
        released_at: rel,
        lock_index: None,
    };
    assert!(check_mutual_exclusion(&[hold("s1", 0, Some(10)), hold("s2", 10, Some(20))]).is_empty());
    let v = check_mutual_exclusion(&[hold("s1", 0, Some(10)), hold("s2", 9, Some(20))]);
    assert_eq!(
        v,
        vec![LockViolation::Overlap { first: hold("s1", 0, Some(10)), second: hold("s2", 9, Some(20)) }]
    );
}

// ---------------------------- files ----------------------------

#[test]
fn saved_history_rechecks_to_the_same_verdict() {
    let h = vec![
        w(1, "a", 0, 1),
        w_unknown(2, "x", 2),
        cas(3, None, "y", 3, 4, false),
        r(2, Some("a"), 4, 5),
        del(1, 6, 7),
    ];
    let mut file = Vec::new();
    write_jsonl(&h, &mut file).unwrap();
    let loaded = read_jsonl(file.as_slice()).unwrap();
    assert_eq!(loaded, h);
    let (a, b) = (check(&loaded), check(&h));
    assert_eq!(a.verdict(), Verdict::Linearizable);
    assert_eq!(
        a.keys.iter().map(|k| (&k.key, &k.verdict, k.stats.steps)).collect::<Vec<_>>(),
        b.keys.iter().map(|k| (&k.key, &k.verdict, k.stats.steps)).collect::<Vec<_>>()
    );
}
