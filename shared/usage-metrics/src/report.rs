//! The yearly report for CMS: two counts and the plan's identifiers, nothing else.

use serde::{Deserialize, Serialize};

use crate::UsageError;
use crate::records::{SHARDS, distinct_days_in_shard};
use fhir_store::KeyValueStore;

/// Who the report is for, as configured (template parameters on AWS, flags locally).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanIdentifiers {
    /// The plan's name as it reports to CMS.
    #[serde(default)]
    pub plan_name: String,
    /// The payer id (as in the X12 files).
    #[serde(default)]
    pub payer_id: String,
    /// The plan's CMS identifiers (MA contract numbers, Medicaid/CHIP state plan ids,
    /// QHP issuer ids), in the order given.
    #[serde(default)]
    pub plan_ids: Vec<String>,
}

/// The report. Its JSON keys `year`, `members_with_app_access` and
/// `members_with_repeat_app_access` are a contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageReport {
    pub year: i32,
    /// (1) Unique members whose data an app they chose retrieved in the year.
    pub members_with_app_access: u64,
    /// (2) Unique members whose data was retrieved on at least two distinct days
    /// (Eastern time) in the year, counting all apps together.
    pub members_with_repeat_app_access: u64,
    #[serde(flatten)]
    pub plan: PlanIdentifiers,
    /// How the counts were made, so a reader needs no other document.
    pub definition: String,
}

/// The definition printed in every report.
pub const DEFINITION: &str = "An access is a successful FHIR read or search by a third-party \
app, with the member's authorization, that returned at least one resource. Days are calendar \
days in US Eastern time (America/New_York). A member counts as accessed more than once when \
accessed on at least two distinct days of the year, by any apps together.";

/// Tallies members from their distinct-day counts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MemberTally {
    pub with_access: u64,
    pub with_repeat_access: u64,
}

impl MemberTally {
    /// Adds one member who was accessed on `distinct_days` days of the year.
    pub fn add(&mut self, distinct_days: usize) {
        if distinct_days >= 1 {
            self.with_access += 1;
        }
        if distinct_days >= 2 {
            self.with_repeat_access += 1;
        }
    }
}

impl UsageReport {
    pub fn new(year: i32, tally: MemberTally, plan: PlanIdentifiers) -> UsageReport {
        UsageReport {
            year,
            members_with_app_access: tally.with_access,
            members_with_repeat_app_access: tally.with_repeat_access,
            plan,
            definition: DEFINITION.to_owned(),
        }
    }

    /// Reads every shard of the year (one Query each, one after another, so memory
    /// holds one shard at a time) and counts.
    pub async fn build<K: KeyValueStore>(
        kv: &K,
        year: i32,
        plan: PlanIdentifiers,
    ) -> Result<UsageReport, UsageError> {
        if !(2000..=9997).contains(&year) {
            return Err(UsageError::Invalid(format!("{year} is not a report year")));
        }
        let mut tally = MemberTally::default();
        for shard in 0..SHARDS {
            for days in distinct_days_in_shard(kv, year, shard).await? {
                tally.add(days);
            }
        }
        Ok(UsageReport::new(year, tally, plan))
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// A header line and one data line (RFC 4180 quoting; plan ids joined by `;`).
    pub fn to_csv(&self) -> String {
        let header = "year,members_with_app_access,members_with_repeat_app_access,plan_name,payer_id,plan_ids";
        let row = [
            self.year.to_string(),
            self.members_with_app_access.to_string(),
            self.members_with_repeat_app_access.to_string(),
            csv_field(&self.plan.plan_name),
            csv_field(&self.plan.payer_id),
            csv_field(&self.plan.plan_ids.join(";")),
        ]
        .join(",");
        format!("{header}\r\n{row}\r\n")
    }
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_day_is_access_and_two_days_are_repeat_access() {
        let mut tally = MemberTally::default();
        for days in [1, 2, 5, 1] {
            tally.add(days);
        }
        assert_eq!(
            tally,
            MemberTally {
                with_access: 4,
                with_repeat_access: 2
            }
        );
    }

    #[test]
    fn the_report_carries_the_contract_keys_and_counts_only() {
        let plan = PlanIdentifiers {
            plan_name: "Acme, \"Gold\"".into(),
            payer_id: "12345".into(),
            plan_ids: vec!["H1234".into(), "H5678".into()],
        };
        let report = UsageReport::new(
            2026,
            MemberTally {
                with_access: 3,
                with_repeat_access: 1,
            },
            plan,
        );
        let json = report.to_json();
        assert_eq!(json["year"], 2026);
        assert_eq!(json["members_with_app_access"], 3);
        assert_eq!(json["members_with_repeat_app_access"], 1);
        assert_eq!(json["plan_ids"][1], "H5678");
        let mut keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "definition",
                "members_with_app_access",
                "members_with_repeat_app_access",
                "payer_id",
                "plan_ids",
                "plan_name",
                "year"
            ]
        );
        assert_eq!(
            report.to_csv(),
            "year,members_with_app_access,members_with_repeat_app_access,plan_name,payer_id,plan_ids\r\n\
             2026,3,1,\"Acme, \"\"Gold\"\"\",12345,H1234;H5678\r\n"
        );
    }
}
