//! The JSON report a sender gets for every file: per transaction set, whether it was
//! accepted and applied, how many claims it carried and every problem with its
//! position; then totals. Built from the same [`FileConversion`] as the 999, so the
//! two never disagree.

use edi_fhir::{FileConversion, Problem, SetOutcome, TransactionSetResult, Warning};
use serde::{Deserialize, Serialize};

/// What the store did with one set's changes (or with a whole file's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteCounts {
    /// Resources that did not exist (or were deleted) and now do.
    pub created: usize,
    /// Resources that got a new version.
    pub updated: usize,
    /// Resources the set touched whose content was already what it says.
    pub unchanged: usize,
}

impl WriteCounts {
    pub fn add(&mut self, other: WriteCounts) {
        self.created += other.created;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
    }
}

/// The file-level verdict, as the 999 AK9 states it for a single group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileStatus {
    /// Every set accepted and applied.
    Accepted,
    /// Some sets applied, some rejected.
    PartiallyAccepted,
    /// Nothing applied.
    Rejected,
}

/// What happened to a file as a whole: the S3 tag value, the local folder name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Disposition {
    /// At least one transaction set was accepted and applied.
    Processed,
    /// Nothing was applied: an envelope error, or every set rejected.
    Rejected,
}

impl Disposition {
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Processed => "processed",
            Disposition::Rejected => "rejected",
        }
    }
}

/// The report for one file. Serialised as `reports/<key>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The S3 URI or path (no content).
    pub file: String,
    pub status: FileStatus,
    pub interchange_control_number: Option<String>,
    pub sender_id: Option<String>,
    pub receiver_id: Option<String>,
    /// Interchange and group problems; any of them rejects the whole file.
    pub file_problems: Vec<Problem>,
    pub transaction_sets: Vec<SetReport>,
    pub totals: Totals,
}

/// One transaction set's line in the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetReport {
    /// GS06.
    pub group_control_number: String,
    /// ST02.
    pub control_number: String,
    /// `837P`, `837I`, `837D`, `835`, `834`, or ST01 when unsupported.
    pub transaction_type: String,
    pub implementation_guide: String,
    /// Whether the set's changes were applied. A set the mapping accepted is still
    /// not applied when an envelope problem rejects the file.
    pub accepted: bool,
    /// Claims (837 CLM, 835 CLP) or members (834 INS).
    pub claims: usize,
    pub problems: Vec<Problem>,
    /// What the sender should fix that rejected nothing (e.g. a base guide id
    /// read as its errata version). Not in the 999: it is no error there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Warning>,
    pub resources: WriteCounts,
}

/// Sums over the file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub sets_accepted: usize,
    pub sets_rejected: usize,
    /// Claims in accepted sets.
    pub claims: usize,
    pub resources: WriteCounts,
}

impl Report {
    /// Builds the report. `writes[i]` is what applying set `i` did (ignored for sets
    /// that were not applied).
    pub fn new(file: &str, conversion: &FileConversion, writes: &[WriteCounts]) -> Report {
        let transaction_sets: Vec<SetReport> = conversion
            .transaction_sets
            .iter()
            .enumerate()
            .map(|(i, set)| {
                set_report(
                    set,
                    !conversion.rejects_everything,
                    writes.get(i).copied().unwrap_or_default(),
                )
            })
            .collect();
        let totals = totals(&transaction_sets);
        Report {
            file: file.to_owned(),
            status: status(&totals, conversion.rejects_everything),
            interchange_control_number: conversion.interchange_control_number.clone(),
            sender_id: conversion.sender_id.clone(),
            receiver_id: conversion.receiver_id.clone(),
            file_problems: conversion.file_problems.clone(),
            transaction_sets,
            totals,
        }
    }

    /// A report for a file refused before it could be read (over the size limit).
    pub fn refused(file: &str, problem: Problem) -> Report {
        Report {
            file: file.to_owned(),
            status: FileStatus::Rejected,
            interchange_control_number: None,
            sender_id: None,
            receiver_id: None,
            file_problems: vec![problem],
            transaction_sets: Vec::new(),
            totals: Totals::default(),
        }
    }

    /// Processed when anything was applied, else rejected.
    pub fn disposition(&self) -> Disposition {
        match self.status {
            FileStatus::Rejected => Disposition::Rejected,
            FileStatus::Accepted | FileStatus::PartiallyAccepted => Disposition::Processed,
        }
    }

    /// Pretty JSON, ending in a newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }
}

fn set_report(set: &TransactionSetResult, envelope_ok: bool, writes: WriteCounts) -> SetReport {
    let (accepted, claims, problems) = match &set.outcome {
        SetOutcome::Accepted { claims, .. } => (envelope_ok, *claims, Vec::new()),
        SetOutcome::Rejected { problems } => (false, 0, problems.clone()),
    };
    SetReport {
        group_control_number: set.group_control_number.clone(),
        control_number: set.control_number.clone(),
        transaction_type: set.transaction_type.clone(),
        implementation_guide: set.implementation_guide.clone(),
        accepted,
        claims,
        problems,
        warnings: set.warnings.clone(),
        resources: if accepted {
            writes
        } else {
            WriteCounts::default()
        },
    }
}

fn totals(sets: &[SetReport]) -> Totals {
    let mut totals = Totals::default();
    for set in sets {
        if set.accepted {
            totals.sets_accepted += 1;
            totals.claims += set.claims;
            totals.resources.add(set.resources);
        } else {
            totals.sets_rejected += 1;
        }
    }
    totals
}

fn status(totals: &Totals, rejects_everything: bool) -> FileStatus {
    match (
        rejects_everything,
        totals.sets_accepted,
        totals.sets_rejected,
    ) {
        (true, _, _) | (false, 0, _) => FileStatus::Rejected,
        (false, _, 0) => FileStatus::Accepted,
        _ => FileStatus::PartiallyAccepted,
    }
}
