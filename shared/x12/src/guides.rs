//! Implementation guides (TR3s) and their loop tables.
//!
//! Loops are data, not code: each guide is a table of "segment S with
//! qualifier Q opens loop L under parent P". The generic recogniser in
//! [`crate::loops`] walks those tables, so adding a guide is adding rows.
//! Loop ids and triggers follow the pyx12 5010 maps for 837P (X222A1), 837I
//! (X223A2), 835 (X221A1) and 834 (X220A1); the 837D rows (X224A2) and the
//! 278 rows (X217) follow the TR3 layouts, which have no public pyx12 5010 map
//! (pyx12 ships only the 4010 278, X094).

use std::fmt;

/// The transaction types this reader understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransactionKind {
    /// 837 professional claim (005010X222A1/A2).
    Professional,
    /// 837 institutional claim (005010X223A2/A3).
    Institutional,
    /// 837 dental claim (005010X224A2/A3).
    Dental,
    /// 835 remittance advice (005010X221A1).
    Remittance,
    /// 834 benefit enrolment (005010X220A1).
    Enrollment,
    /// 278 health care services review, request or response (005010X217):
    /// prior authorizations.
    ServicesReview,
}

/// An identified implementation guide: the kind plus the exact version
/// string the sender used (so errata versions remain visible).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Guide {
    /// Which transaction.
    pub kind: TransactionKind,
    /// The implementation convention reference, e.g. `005010X222A1`.
    pub version: &'static str,
}

/// The supported (ST01, version) pairs.
const SUPPORTED: &[(&str, &str, TransactionKind)] = &[
    ("837", "005010X222A1", TransactionKind::Professional),
    ("837", "005010X222A2", TransactionKind::Professional),
    ("837", "005010X223A2", TransactionKind::Institutional),
    ("837", "005010X223A3", TransactionKind::Institutional),
    ("837", "005010X224A2", TransactionKind::Dental),
    ("837", "005010X224A3", TransactionKind::Dental),
    ("835", "005010X221A1", TransactionKind::Remittance),
    ("834", "005010X220A1", TransactionKind::Enrollment),
    ("278", "005010X217", TransactionKind::ServicesReview),
];

/// The 2009 base guides (before errata A1–A3) and the errata version each is
/// read as: the errata fixed rules and code lists, not the loop structure, so
/// a file that still names the base guide reads exactly as its errata. The
/// 278 has no errata version (HIPAA adopted `005010X217` itself), so it has
/// no row here: `005010X217` is the one id it is read under.
const BASE_GUIDES: &[(&str, &str)] = &[
    ("005010X222", "005010X222A1"),
    ("005010X223", "005010X223A2"),
    ("005010X224", "005010X224A2"),
    ("005010X221", "005010X221A1"),
    ("005010X220", "005010X220A1"),
];

/// A guide with what the reader noticed while identifying it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identified {
    /// The guide the set is read as.
    pub guide: Guide,
    /// Accepted, but worth telling the sender (a base guide id, GS08 and
    /// ST03 disagreeing): the report shows them; they reject nothing.
    pub warnings: Vec<String>,
}

impl Guide {
    /// Identifies the guide from ST01 and ST03, falling back to GS08 when ST03
    /// is absent (common in 835s). ST03 wins when both are present because it
    /// is the set's own claim (GS08 is sometimes stale, e.g. `X222` on an
    /// institutional set); a disagreement is a warning. A base guide id
    /// (`005010X222`) is read as its errata version, with a warning.
    pub fn identify(
        st01: &str,
        st03: Option<&str>,
        gs08: Option<&str>,
    ) -> Result<Identified, String> {
        let (sent, element) = match (st03, gs08) {
            (Some(v), _) => (v, "ST03"),
            (None, Some(v)) => (v, "GS08"),
            (None, None) => ("", "ST03"),
        };
        let mut warnings = Vec::new();
        if let (Some(st03), Some(gs08)) = (st03, gs08)
            && st03 != gs08
        {
            warnings.push(format!(
                "GS08 says {gs08} but ST03 says {st03}: the set is read as ST03 names it"
            ));
        }
        let version = match BASE_GUIDES.iter().find(|(base, _)| *base == sent) {
            Some((base, errata)) => {
                warnings.push(format!(
                    "{element} {base} is the 2009 base guide, before its errata: read as \
                     {errata}, whose structure it shares; please send {errata}"
                ));
                errata
            }
            None => sent,
        };
        SUPPORTED
            .iter()
            .find(|(id, v, _)| *id == st01 && *v == version)
            .map(|(_, v, kind)| Identified {
                guide: Self {
                    kind: *kind,
                    version: v,
                },
                warnings,
            })
            .ok_or_else(|| {
                let shown = if version.is_empty() {
                    "no version"
                } else {
                    version
                };
                format!("transaction set {st01} ({shown}) is not supported")
            })
    }

    /// The loop table of this guide.
    pub(crate) fn table(&self) -> LoopTable {
        match self.kind {
            TransactionKind::Professional => LoopTable {
                defs: &[CLAIM_837, PROFESSIONAL_837],
                closers: &[],
            },
            TransactionKind::Institutional => LoopTable {
                defs: &[CLAIM_837, INSTITUTIONAL_837],
                closers: &[],
            },
            TransactionKind::Dental => LoopTable {
                defs: &[CLAIM_837, DENTAL_837],
                closers: &[],
            },
            TransactionKind::Remittance => LoopTable {
                defs: &[REMITTANCE_835],
                closers: &[],
            },
            TransactionKind::Enrollment => LoopTable {
                defs: &[ENROLLMENT_834],
                closers: ENROLLMENT_CLOSERS,
            },
            TransactionKind::ServicesReview => LoopTable {
                defs: &[SERVICES_REVIEW_278],
                closers: &[],
            },
        }
    }
}

impl fmt::Display for Guide {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = match self.kind {
            TransactionKind::Professional => "837P",
            TransactionKind::Institutional => "837I",
            TransactionKind::Dental => "837D",
            TransactionKind::Remittance => "835",
            TransactionKind::Enrollment => "834",
            TransactionKind::ServicesReview => "278",
        };
        write!(f, "{st} {}", self.version)
    }
}

/// Id of the implicit root loop holding ST, the header segments and SE.
pub const ROOT_LOOP: &str = "HEADER";

/// One row: `segment` (with element `qualifier.0` in `qualifier.1`) opens
/// loop `id` when a loop `parent` is open. For `HL` the qualifier is HL03 and
/// the parent is found through HL02 instead of the open-loop stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LoopDef {
    pub id: &'static str,
    pub parent: &'static str,
    pub segment: &'static str,
    pub qualifier: Option<(usize, &'static [&'static str])>,
}

/// A segment that ends a wrapper loop (`LE` closes the 834 `LS` loop).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Closer {
    pub segment: &'static str,
    pub loop_id: &'static str,
}

/// A guide's rows, split in slices so guides can share rows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LoopTable {
    pub defs: &'static [&'static [LoopDef]],
    pub closers: &'static [Closer],
}

impl LoopTable {
    /// All rows.
    pub fn rows(&self) -> impl Iterator<Item = &'static LoopDef> {
        self.defs.iter().flat_map(|d| d.iter())
    }

    /// The distinct segment ids that can open or close a loop: a quick
    /// filter so most segments (DTP, REF, AMT...) skip the table walk.
    pub fn structural_ids(&self) -> Vec<&'static str> {
        let mut ids: Vec<&'static str> = self
            .rows()
            .map(|d| d.segment)
            .chain(self.closers.iter().map(|c| c.segment))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

const fn row(id: &'static str, parent: &'static str, segment: &'static str) -> LoopDef {
    LoopDef {
        id,
        parent,
        segment,
        qualifier: None,
    }
}

const fn q(
    id: &'static str,
    parent: &'static str,
    segment: &'static str,
    element: usize,
    values: &'static [&'static str],
) -> LoopDef {
    LoopDef {
        id,
        parent,
        segment,
        qualifier: Some((element, values)),
    }
}

/// Rows shared by 837P/I/D: envelope names, HL levels, claim, COB, line.
const CLAIM_837: &[LoopDef] = &[
    q("1000A", ROOT_LOOP, "NM1", 1, &["41"]),
    q("1000B", ROOT_LOOP, "NM1", 1, &["40"]),
    q("2000A", ROOT_LOOP, "HL", 3, &["20"]),
    q("2010AA", "2000A", "NM1", 1, &["85"]),
    q("2010AB", "2000A", "NM1", 1, &["87"]),
    q("2010AC", "2000A", "NM1", 1, &["PE"]),
    q("2000B", "2000A", "HL", 3, &["22"]),
    q("2010BA", "2000B", "NM1", 1, &["IL"]),
    q("2010BB", "2000B", "NM1", 1, &["PR"]),
    q("2000C", "2000B", "HL", 3, &["23"]),
    q("2010CA", "2000C", "NM1", 1, &["QC"]),
    row("2300", "2000B", "CLM"),
    row("2300", "2000C", "CLM"),
    row("2320", "2300", "SBR"),
    q("2330A", "2320", "NM1", 1, &["IL"]),
    q("2330B", "2320", "NM1", 1, &["PR"]),
    row("2400", "2300", "LX"),
    row("2430", "2400", "SVD"),
];

const PROFESSIONAL_837: &[LoopDef] = &[
    q("2310A", "2300", "NM1", 1, &["DN", "P3"]),
    q("2310B", "2300", "NM1", 1, &["82"]),
    q("2310C", "2300", "NM1", 1, &["77"]),
    q("2310D", "2300", "NM1", 1, &["DQ"]),
    q("2310E", "2300", "NM1", 1, &["PW"]),
    q("2310F", "2300", "NM1", 1, &["45"]),
    q("2330C", "2320", "NM1", 1, &["DN", "P3"]),
    q("2330D", "2320", "NM1", 1, &["82"]),
    q("2330E", "2320", "NM1", 1, &["77"]),
    q("2330F", "2320", "NM1", 1, &["DQ"]),
    q("2330G", "2320", "NM1", 1, &["85"]),
    row("2410", "2400", "LIN"),
    q("2420A", "2400", "NM1", 1, &["82"]),
    q("2420B", "2400", "NM1", 1, &["QB"]),
    q("2420C", "2400", "NM1", 1, &["77"]),
    q("2420D", "2400", "NM1", 1, &["DQ"]),
    q("2420E", "2400", "NM1", 1, &["DK"]),
    q("2420F", "2400", "NM1", 1, &["DN", "P3"]),
    q("2420G", "2400", "NM1", 1, &["PW"]),
    q("2420H", "2400", "NM1", 1, &["45"]),
    row("2440", "2400", "LQ"),
];

const INSTITUTIONAL_837: &[LoopDef] = &[
    q("2310A", "2300", "NM1", 1, &["71"]),
    q("2310B", "2300", "NM1", 1, &["72"]),
    q("2310C", "2300", "NM1", 1, &["ZZ"]),
    q("2310D", "2300", "NM1", 1, &["82"]),
    q("2310E", "2300", "NM1", 1, &["77"]),
    q("2310F", "2300", "NM1", 1, &["DN"]),
    q("2330C", "2320", "NM1", 1, &["71"]),
    q("2330D", "2320", "NM1", 1, &["72"]),
    q("2330E", "2320", "NM1", 1, &["ZZ"]),
    q("2330F", "2320", "NM1", 1, &["77"]),
    q("2330G", "2320", "NM1", 1, &["82"]),
    q("2330H", "2320", "NM1", 1, &["DN"]),
    q("2330I", "2320", "NM1", 1, &["85"]),
    row("2410", "2400", "LIN"),
    q("2420A", "2400", "NM1", 1, &["72"]),
    q("2420B", "2400", "NM1", 1, &["ZZ"]),
    q("2420C", "2400", "NM1", 1, &["82"]),
    q("2420D", "2400", "NM1", 1, &["DN"]),
];

/// 837D rows follow the dental TR3 (no public pyx12 map to cross-check the
/// 2330 letters; the mapper should rely on NM101, not the letter).
const DENTAL_837: &[LoopDef] = &[
    q("2310A", "2300", "NM1", 1, &["DN", "P3"]),
    q("2310B", "2300", "NM1", 1, &["82"]),
    q("2310C", "2300", "NM1", 1, &["77"]),
    q("2310D", "2300", "NM1", 1, &["DD"]),
    q("2310E", "2300", "NM1", 1, &["DQ"]),
    q("2330C", "2320", "NM1", 1, &["DN", "P3"]),
    q("2330D", "2320", "NM1", 1, &["82"]),
    q("2330E", "2320", "NM1", 1, &["DQ"]),
    q("2330F", "2320", "NM1", 1, &["85"]),
    q("2330G", "2320", "NM1", 1, &["DD"]),
    q("2330H", "2320", "NM1", 1, &["77"]),
    q("2420A", "2400", "NM1", 1, &["82"]),
    q("2420B", "2400", "NM1", 1, &["DD"]),
    q("2420C", "2400", "NM1", 1, &["DQ"]),
    q("2420D", "2400", "NM1", 1, &["77"]),
];

const REMITTANCE_835: &[LoopDef] = &[
    q("1000A", ROOT_LOOP, "N1", 1, &["PR"]),
    q("1000B", ROOT_LOOP, "N1", 1, &["PE"]),
    row("2000", ROOT_LOOP, "LX"),
    row("2100", "2000", "CLP"),
    row("2110", "2100", "SVC"),
    row("FOOTER", ROOT_LOOP, "PLB"),
];

const ENROLLMENT_834: &[LoopDef] = &[
    q("1000A", ROOT_LOOP, "N1", 1, &["P5"]),
    q("1000B", ROOT_LOOP, "N1", 1, &["IN"]),
    q("1000C", ROOT_LOOP, "N1", 1, &["BO", "TV"]),
    row("1100C", "1000C", "ACT"),
    row("2000", ROOT_LOOP, "INS"),
    q("2100A", "2000", "NM1", 1, &["IL", "74"]),
    q("2100B", "2000", "NM1", 1, &["70"]),
    q("2100C", "2000", "NM1", 1, &["31"]),
    q("2100D", "2000", "NM1", 1, &["36"]),
    q("2100E", "2000", "NM1", 1, &["M8"]),
    q("2100F", "2000", "NM1", 1, &["S3"]),
    q(
        "2100G",
        "2000",
        "NM1",
        1,
        &[
            "6Y", "9K", "E1", "EI", "EXS", "GB", "GD", "J6", "LR", "QD", "S1", "TZ",
        ],
    ),
    q("2100H", "2000", "NM1", 1, &["45"]),
    row("2200", "2000", "DSB"),
    row("2300", "2000", "HD"),
    row("2310", "2300", "LX"),
    row("2320", "2300", "COB"),
    q("2330", "2320", "NM1", 1, &["36", "GW", "IN"]),
    q("LS", "2000", "LS", 1, &["2700"]),
    row("2700", "LS", "LX"),
    q("2750", "2700", "N1", 1, &["75"]),
];

/// Provider roles of the 278 patient event (2010EA) and service (2010FA)
/// provider loops (NM101).
const REVIEW_PROVIDERS: &[&str] = &[
    "1T", "71", "72", "73", "77", "AAJ", "DD", "DK", "DN", "FA", "G3", "P3", "QB", "QV", "SJ",
];

/// 278 (X217), request and response alike: UMO (20), requester (21),
/// subscriber (22), dependent (23), patient event (EV, under the subscriber
/// when the patient is the subscriber, else under the dependent) and service
/// (SS). The event's other name loops: transport (2010EB) and the other UMO
/// (2010EC).
const SERVICES_REVIEW_278: &[LoopDef] = &[
    q("2000A", ROOT_LOOP, "HL", 3, &["20"]),
    q(
        "2010A",
        "2000A",
        "NM1",
        1,
        &["X3", "2B", "36", "40", "FA", "PR"],
    ),
    q("2000B", "2000A", "HL", 3, &["21"]),
    q("2010B", "2000B", "NM1", 1, &["1P", "FA"]),
    q("2000C", "2000B", "HL", 3, &["22"]),
    q("2010C", "2000C", "NM1", 1, &["IL"]),
    q("2000D", "2000C", "HL", 3, &["23"]),
    q("2010D", "2000D", "NM1", 1, &["QC"]),
    q("2000E", "2000C", "HL", 3, &["EV"]),
    q("2000E", "2000D", "HL", 3, &["EV"]),
    q("2010EA", "2000E", "NM1", 1, REVIEW_PROVIDERS),
    q("2010EB", "2000E", "NM1", 1, &["45", "FS", "ND", "PW", "R3"]),
    q("2010EC", "2000E", "NM1", 1, &["2B", "36", "40", "PR", "X3"]),
    q("2000F", "2000E", "HL", 3, &["SS"]),
    q("2010FA", "2000F", "NM1", 1, REVIEW_PROVIDERS),
];

const ENROLLMENT_CLOSERS: &[Closer] = &[Closer {
    segment: "LE",
    loop_id: "LS",
}];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifies_by_st03_then_gs08() {
        let kind = |st03, gs08| Guide::identify("837", st03, gs08).map(|i| i.guide.kind);
        assert_eq!(
            kind(Some("005010X223A3"), Some("005010X222")),
            Ok(TransactionKind::Institutional)
        );
        let g = Guide::identify("835", None, Some("005010X221A1"));
        assert_eq!(g.map(|g| g.guide.kind), Ok(TransactionKind::Remittance));
        let e = Guide::identify("270", Some("005010X279A1"), None);
        assert_eq!(
            e,
            Err("transaction set 270 (005010X279A1) is not supported".into())
        );
    }

    #[test]
    fn the_278_is_read_under_005010x217_request_and_response_alike() {
        let id = Guide::identify("278", Some("005010X217"), Some("005010X217"));
        let id = id.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(id.guide.kind, TransactionKind::ServicesReview);
        assert!(id.warnings.is_empty());
        assert_eq!(id.guide.to_string(), "278 005010X217");
        // 4010's 278 (X094A1) is another structure: named, not guessed.
        assert_eq!(
            Guide::identify("278", Some("004010X094A1"), None).map(|i| i.guide),
            Err("transaction set 278 (004010X094A1) is not supported".into())
        );
    }

    #[test]
    fn a_base_guide_reads_as_its_errata_with_a_warning() {
        for (st01, base, errata) in [
            ("837", "005010X222", "005010X222A1"),
            ("837", "005010X223", "005010X223A2"),
            ("837", "005010X224", "005010X224A2"),
            ("835", "005010X221", "005010X221A1"),
            ("834", "005010X220", "005010X220A1"),
        ] {
            let id = Guide::identify(st01, Some(base), Some(base));
            let id = id.unwrap_or_else(|e| panic!("{base}: {e}"));
            assert_eq!(id.guide.version, errata);
            assert_eq!(id.warnings.len(), 1, "{:?}", id.warnings);
            assert!(id.warnings[0].contains(base) && id.warnings[0].contains(errata));
        }
    }

    #[test]
    fn st03_names_the_guide_when_gs08_disagrees_and_that_is_a_warning() {
        let id = Guide::identify("837", Some("005010X222A1"), Some("005010X223A2"));
        let id = id.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(id.guide.kind, TransactionKind::Professional);
        assert_eq!(
            id.warnings,
            ["GS08 says 005010X223A2 but ST03 says 005010X222A1: the set is read as ST03 names it"]
        );
        let same = Guide::identify("837", Some("005010X222A1"), Some("005010X222A1"));
        assert_eq!(same.map(|i| i.warnings.len()), Ok(0));
    }
}
