//! Hot DNS answers: UDP service answers served from pre-encoded bytes by
//! the receive loops. A catalog change or a change of the DNS token's ACL
//! state is visible on the very next query, TC and size rules hold for
//! answers served from the table, answers stay shuffled, and the question
//! is echoed as asked. Uses the in-memory backend of `dns_common`.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::atomic::Ordering;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};

use crate::dns_common::*;

fn ips(m: &hickory_proto::op::Message) -> Vec<IpAddr> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn catalog_change_is_visible_on_the_next_query() {
    let b = FakeBackend::new();
    b.set_service(DC, "web", 5, many(2));
    let s = start(b.clone(), "127.0.0.90", |_| {}).await;
    let (m, _) = udp(s.addr, "web.service.consul.", RecordType::A, Some(4096)).await;
    assert_eq!(m.answers.len(), 2);
    let (m, _) = udp(s.addr, "web.service.consul.", RecordType::A, Some(4096)).await;
    assert_eq!(m.answers.len(), 2);
    assert_eq!(s.handler.hot_hits(), 1, "the second query comes from the hot table");
    // New index: the next query already sees it.
    b.set_service(DC, "web", 6, many(5));
    let (m, _) = udp(s.addr, "web.service.consul.", RecordType::A, Some(4096)).await;
    assert_eq!(m.answers.len(), 5);
    assert_eq!(s.handler.hot_hits(), 1, "a stale entry is never served");
    let (m, _) = udp(s.addr, "web.service.consul.", RecordType::A, Some(4096)).await;
    assert_eq!(m.answers.len(), 5);
    assert_eq!(s.handler.hot_hits(), 2);
    // The service going away: NXDOMAIN at once.
    b.set_service(DC, "web", 7, Vec::new());
    let (m, _) = udp(s.addr, "web.service.consul.", RecordType::A, Some(4096)).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    s.stop().await;
}

#[tokio::test]
async fn dns_token_acl_change_is_visible_on_the_next_query() {
    let b = FakeBackend::new();
    b.set_service(DC, "web", 5, many(4));
    let s = start(b.clone(), "127.0.0.91", |_| {}).await;
    for _ in 0..3 {
        let (m, _) = udp(s.addr, "web.service.consul.", RecordType::SRV, Some(4096)).await;
        assert_eq!(m.answers.len(), 4);
    }
    assert_eq!(s.handler.hot_hits(), 2);
    // The token's policies changed: it now reads one instance, at the same
    // catalog index. Only the ACL state tells the entries apart.
    b.set_service(DC, "web", 5, many(1));
    b.acl.fetch_add(1, Ordering::SeqCst);
    let (m, _) = udp(s.addr, "web.service.consul.", RecordType::SRV, Some(4096)).await;
    assert_eq!(m.answers.len(), 1, "the old token's answer is not served");
    let (m, _) = udp(s.addr, "web.service.consul.", RecordType::SRV, Some(4096)).await;
    assert_eq!(m.answers.len(), 1);
    assert_eq!(s.handler.hot_hits(), 3);
    s.stop().await;
}

#[tokio::test]
async fn tc_and_size_rules_hold_for_hot_answers() {
    let b = FakeBackend::new();
    b.set_service(DC, "web", 5, many(40));
    let s = start(b, "127.0.0.92", |c| c.settings.enable_truncate = true).await;
    for round in 0..30 {
        // Small EDNS: as many SRVs as fit in 512 bytes, TC set, glue only
        // for the SRVs kept.
        let (m, len) = udp(s.addr, "web.service.consul.", RecordType::SRV, Some(512)).await;
        assert!(len <= 512, "{len}");
        assert!(m.metadata.truncation, "round {round}");
        assert!(m.answers.len() > 3 && m.answers.len() < 40, "{}", m.answers.len());
        assert_eq!(m.edns.as_ref().map(|e| e.max_payload()), Some(512));
        let targets: HashSet<_> = m
            .answers
            .iter()
            .map(|r| match &r.data {
                RData::SRV(s) => s.target.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert!(m.additionals.iter().all(|r| targets.contains(&r.name)));
        // No EDNS: udp_answer_limit, TC (enable_truncate).
        let (m, len) = udp(s.addr, "web.service.consul.", RecordType::A, None).await;
        assert_eq!(m.answers.len(), 3);
        assert!(m.metadata.truncation && len <= 512);
        // A large EDNS size is its own entry: everything fits, no TC.
        let (m, len) = udp(s.addr, "web.service.consul.", RecordType::A, Some(4096)).await;
        assert_eq!(m.answers.len(), 40);
        assert!(!m.metadata.truncation && len <= 4096);
    }
    assert!(s.handler.hot_hits() >= 87, "{}", s.handler.hot_hits());
    s.stop().await;
}

#[tokio::test]
async fn hot_answers_stay_shuffled_and_echo_the_question() {
    let b = FakeBackend::new();
    b.set_service(DC, "web", 5, many(20));
    let s = start(b, "127.0.0.93", |_| {}).await;
    let mut first = HashSet::new();
    for _ in 0..200 {
        let (m, _) = udp(s.addr, "web.service.consul.", RecordType::A, None).await;
        assert_eq!(m.answers.len(), 3);
        let got = ips(&m);
        assert_eq!(got.iter().collect::<HashSet<_>>().len(), 3, "no duplicates");
        first.insert(got[0]);
    }
    assert!(s.handler.hot_hits() >= 199);
    // Uniform over 20 addresses: ~20 distinct expected; < 10 has probability < 1e-30.
    assert!(first.len() >= 10, "only {} distinct first answers", first.len());
    // Same entry, other case: echoed exactly as asked, owners too.
    let hits = s.handler.hot_hits();
    let (m, _) = udp(s.addr, "WEB.Service.Consul.", RecordType::A, None).await;
    assert_eq!(s.handler.hot_hits(), hits + 1);
    assert_eq!(m.queries[0].name().to_ascii(), "WEB.Service.Consul.");
    assert!(m.answers.iter().all(|r| r.name.to_ascii() == "WEB.Service.Consul."));
    assert!(m.metadata.authoritative && m.metadata.recursion_desired);
    s.stop().await;
}
