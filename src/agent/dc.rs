//! Which datacenter a request is for. The HTTP layer reads `?dc=` once and
//! runs the handler inside `in_datacenter`; every RPC the handler makes
//! through `Agent::call` then names it in its `RequestContext`, which a
//! server of this datacenter relays over the WAN to a server of the target
//! one (Consul's `?dc` routing). A task-local keeps the datacenter out of
//! the signature of the dozens of agent calls a handler may make.

use std::future::Future;

tokio::task_local! {
    static TARGET_DC: String;
}

/// Runs `f` with every RPC it makes routed to datacenter `dc` (`None`, an
/// empty name or `local` itself: no routing).
pub fn in_datacenter<F: Future>(dc: Option<String>, local: &str, f: F) -> impl Future<Output = F::Output> {
    let foreign = dc.filter(|d| !d.is_empty() && !d.eq_ignore_ascii_case(local));
    async move {
        match foreign {
            Some(dc) => TARGET_DC.scope(dc, f).await,
            None => f.await,
        }
    }
}

/// The foreign datacenter the current task's RPCs go to, if any.
pub fn target_dc() -> Option<String> {
    TARGET_DC.try_with(Clone::clone).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn scope_only_for_foreign_datacenters() {
        assert_eq!(target_dc(), None);
        assert_eq!(in_datacenter(Some("dc2".into()), "dc1", async { target_dc() }).await, Some("dc2".into()));
        assert_eq!(in_datacenter(Some("DC1".into()), "dc1", async { target_dc() }).await, None);
        assert_eq!(in_datacenter(Some(String::new()), "dc1", async { target_dc() }).await, None);
        assert_eq!(in_datacenter(None, "dc1", async { target_dc() }).await, None);
    }
}
