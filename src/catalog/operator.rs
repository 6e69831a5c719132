//! Replicated operator settings: the autopilot configuration that
//! `/v1/operator/autopilot/configuration` reads and writes. Kept in the
//! state machine (not in each server's config file) so every server and
//! every future leader applies the same settings, as Consul does.

use serde::{Deserialize, Serialize};

/// Autopilot settings as stored. Durations are nanoseconds so the record
/// stays plain data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutopilotConfig {
    pub cleanup_dead_servers: bool,
    pub last_contact_threshold_ns: u64,
    pub max_trailing_logs: u64,
    pub min_quorum: u32,
    pub server_stabilization_time_ns: u64,
    pub create_index: u64,
    pub modify_index: u64,
}

impl AutopilotConfig {
    /// Stores `new` at `index`, honouring an optional check-and-set index
    /// (0 means "only if none is stored yet"). Returns whether it was written.
    pub fn set(
        slot: &mut Option<AutopilotConfig>,
        index: u64,
        new: &AutopilotConfig,
        cas: Option<u64>,
    ) -> bool {
        let current_modify = slot.as_ref().map(|c| c.modify_index);
        if let Some(want) = cas {
            match current_modify {
                None if want != 0 => return false,
                Some(m) if m != want => return false,
                _ => {}
            }
        }
        let create_index = slot.as_ref().map(|c| c.create_index).unwrap_or(index);
        *slot = Some(AutopilotConfig { create_index, modify_index: index, ..new.clone() });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(trailing: u64) -> AutopilotConfig {
        AutopilotConfig {
            cleanup_dead_servers: true,
            last_contact_threshold_ns: 200_000_000,
            max_trailing_logs: trailing,
            min_quorum: 0,
            server_stabilization_time_ns: 10_000_000_000,
            create_index: 0,
            modify_index: 0,
        }
    }

    #[test]
    fn cas_rules() {
        let mut slot = None;
        assert!(!AutopilotConfig::set(&mut slot, 5, &cfg(1), Some(3)), "cas on a missing record must name 0");
        assert!(AutopilotConfig::set(&mut slot, 5, &cfg(1), Some(0)));
        assert_eq!(slot.as_ref().map(|c| (c.create_index, c.modify_index)), Some((5, 5)));
        assert!(!AutopilotConfig::set(&mut slot, 6, &cfg(2), Some(4)));
        assert!(AutopilotConfig::set(&mut slot, 7, &cfg(2), Some(5)));
        assert!(AutopilotConfig::set(&mut slot, 8, &cfg(3), None));
        let c = slot.unwrap();
        assert_eq!((c.create_index, c.modify_index, c.max_trailing_logs), (5, 8, 3));
    }
}
