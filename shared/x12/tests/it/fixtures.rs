//! The valid fixtures read like the TR3s say they should: guide identified,
//! envelope clean, loops nested as the implementation guide nests them.

use x12::{Period, Reader, StreamReader, TransactionKind, TransactionSet};

use crate::support::fixture;

/// Reads a file that must be fully valid and hands its single set to `check`.
fn with_single_set(bytes: &[u8], check: impl FnOnce(&TransactionSet<'_>)) {
    let mut reader = Reader::new(bytes).expect("fixture is X12");
    let sets: Vec<_> = reader.by_ref().collect();
    assert_eq!(sets.len(), 1);
    match &sets[0] {
        Ok(set) => check(set),
        Err(rejected) => panic!("{rejected}"),
    }
    let report = reader.finish();
    assert!(report.is_clean(), "{:?}", report.errors);
    assert_eq!((report.interchanges, report.groups, report.sets), (1, 1, 1));
}

fn ids<'s>(loops: impl Iterator<Item = x12::Loop<'s, 's>>) -> Vec<&'static str> {
    loops.map(|l| l.id()).collect()
}

#[test]
fn professional_837_hierarchy_billing_subscriber_patient_claim_lines() {
    with_single_set(&fixture("837p.x12"), |set| {
        assert_eq!(set.guide().kind, TransactionKind::Professional);
        assert_eq!(set.guide().version, "005010X222A1");
        assert_eq!(set.control_number(), "0021");
        assert_eq!(set.group().functional_id, "HC");
        assert_eq!(set.interchange().control_number, "000000905");
        assert_eq!(set.interchange().sender_id, "SUBMITTERID");

        let root = set.root();
        assert_eq!(ids(root.children()), ["1000A", "1000B", "2000A"]);
        let billing = root.child("2000A").expect("2000A");
        assert_eq!(
            billing.segment_with("PRV", "BI").and_then(|s| s.element(3)),
            Some("203BF0100Y")
        );
        assert_eq!(ids(billing.children()), ["2010AA", "2010AB", "2000B"]);
        let npi = billing
            .child("2010AA")
            .and_then(|l| l.trigger())
            .and_then(|nm1| nm1.element(9));
        assert_eq!(npi, Some("9876543210"));

        let subscriber = billing.child("2000B").expect("2000B");
        assert_eq!(ids(subscriber.children()), ["2010BA", "2010BB", "2000C"]);
        let member_id = subscriber
            .child("2010BA")
            .and_then(|l| l.trigger())
            .and_then(|s| s.element(9));
        assert_eq!(member_id, Some("JS00111223333"));

        let patient = subscriber.child("2000C").expect("2000C");
        assert_eq!(
            patient.segment("PAT").and_then(|s| s.element(1)),
            Some("19")
        );
        let claim = patient.child("2300").expect("claim under the patient");
        let clm = claim.trigger().expect("CLM");
        assert_eq!(clm.element(1), Some("26463774"));
        assert_eq!(clm.component(5, 1), Some("11"));
        assert_eq!(clm.component(5, 3), Some("1"));
        assert_eq!(
            clm.decimal(2).map(|d| d.map(|d| d.to_string())),
            Ok(Some("100".into()))
        );
        let hi = claim.segment("HI").expect("HI");
        assert_eq!(
            hi.composite(1).map(|c| (c.component(1), c.component(2))),
            Some((Some("ABK"), Some("J020")))
        );
        assert_eq!(
            ids(claim.children()),
            ["2310B", "2310C", "2400", "2400", "2400", "2400"]
        );
        assert_eq!(claim.ancestor("2000B").map(|l| l.id()), Some("2000B"));

        let lines: Vec<_> = claim.children_named("2400").collect();
        let sv1 = lines[2].segment("SV1").expect("SV1");
        assert_eq!(sv1.component(1, 2), Some("99214"));
        assert_eq!(sv1.element(7), Some("2"));
        let dos = lines[2].segment_with("DTP", "472").map(|d| d.period(2));
        assert!(matches!(dos, Some(Ok(Some(Period::Date(d)))) if d.to_string() == "2024-01-06"));
        // 2310B's PRV belongs to 2310B, not to the claim.
        assert!(claim.segment("PRV").is_none());
        assert!(
            claim
                .child("2310B")
                .and_then(|l| l.segment_with("PRV", "PE"))
                .is_some()
        );
        assert_eq!(set.loops("2300").count(), 1);
        assert_eq!(set.segments().len(), 47);
    });
}

#[test]
fn a_278_response_nests_umo_requester_subscriber_event_and_services() {
    with_single_set(&fixture("278_partial.x12"), |set| {
        assert_eq!(set.guide().kind, TransactionKind::ServicesReview);
        assert_eq!(set.guide().version, "005010X217");
        assert_eq!(set.group().functional_id, "HI");
        // BHT02 = 11: a response, the decisions in HCR.
        assert_eq!(
            set.root().segment("BHT").and_then(|b| b.element(2)),
            Some("11")
        );

        let umo = set.root().child("2000A").expect("2000A");
        assert_eq!(ids(umo.children()), ["2010A", "2000B"]);
        let umo_id = umo
            .child("2010A")
            .and_then(|l| l.trigger())
            .and_then(|n| n.element(9));
        assert_eq!(umo_id, Some("999996666"));
        let requester = umo.child("2000B").expect("2000B");
        assert_eq!(ids(requester.children()), ["2010B", "2000C"]);
        let subscriber = requester.child("2000C").expect("2000C");
        // The patient is the subscriber: the event hangs under 2000C.
        assert_eq!(ids(subscriber.children()), ["2010C", "2000E"]);
        let event = subscriber.child("2000E").expect("2000E");
        let hcr = event.segment("HCR").expect("HCR");
        assert_eq!(
            (hcr.element(1), hcr.element(2)),
            (Some("A2"), Some("AUTH9020117"))
        );
        assert_eq!(
            event.segment_with("DTP", "AAH").map(|d| d.period(2)),
            Some(Ok(Some(Period::Range(
                x12::Date::parse_d8("20240212").expect("date"),
                x12::Date::parse_d8("20240512").expect("date"),
            ))))
        );
        assert_eq!(ids(event.children()), ["2010EA", "2000F", "2000F", "2000F"]);
        let decisions: Vec<_> = event
            .children_named("2000F")
            .map(|service| {
                let hcr = service.segment("HCR").expect("HCR per service");
                let sv1 = service.segment("SV1").expect("SV1");
                let hsd = service.segment("HSD").expect("HSD");
                (
                    hcr.element(1),
                    sv1.component(1, 2),
                    hsd.element(2),
                    hcr.element(3),
                )
            })
            .collect();
        assert_eq!(
            decisions,
            [
                (Some("A1"), Some("97110"), Some("12"), None),
                (Some("A6"), Some("97140"), Some("10"), None),
                (Some("A3"), Some("97530"), Some("8"), Some("T1")),
            ]
        );
    });
}

#[test]
fn a_278_event_for_a_dependent_hangs_under_2000d() {
    with_single_set(&fixture("278_denied.x12"), |set| {
        let dependent = set.loops("2000D").next().expect("2000D");
        assert_eq!(ids(dependent.children()), ["2010D", "2000E"]);
        let event = dependent.child("2000E").expect("2000E");
        assert_eq!(
            event
                .child("2010EA")
                .and_then(|l| l.trigger())
                .and_then(|n| n.element(1)),
            Some("FA")
        );
        let service = event.child("2000F").expect("2000F");
        assert_eq!(
            service.segment("SV2").and_then(|s| s.element(1)),
            Some("0610")
        );
    });
}

#[test]
fn a_278_request_has_bht02_13_and_no_decision() {
    with_single_set(&fixture("278_request.x12"), |set| {
        assert_eq!(
            set.root().segment("BHT").and_then(|b| b.element(2)),
            Some("13")
        );
        let event = set.loops("2000E").next().expect("2000E");
        assert!(event.segment("HCR").is_none());
        assert_eq!(event.segment("TRN").and_then(|t| t.element(1)), Some("1"));
        assert_eq!(ids(event.children()), ["2010EA", "2010EA", "2000F"]);
        assert!(event.segment("CL1").is_some() && event.segment("HSD").is_some());
    });
}

#[test]
fn professional_837_cob_loops_2320_2330_2430() {
    with_single_set(&fixture("837p_cob.x12"), |set| {
        let claim = set.loops("2300").next().expect("claim");
        assert_eq!(
            claim.parent().map(|l| l.id()),
            Some("2000B"),
            "SBR02=18: claim hangs under the subscriber"
        );
        assert_eq!(claim.trigger().and_then(|c| c.component(5, 3)), Some("7"));
        assert_eq!(
            claim.segment_with("REF", "F8").and_then(|r| r.element(2)),
            Some("119932404007801")
        );
        let other = claim.child("2320").expect("2320");
        assert_eq!(
            other.segment_with("AMT", "D").and_then(|a| a.element(2)),
            Some("64")
        );
        assert_eq!(ids(other.children()), ["2330A", "2330B"]);
        let payer = other.child("2330B").expect("2330B");
        assert_eq!(payer.trigger().and_then(|n| n.element(9)), Some("00435"));
        assert_eq!(
            payer.segment_with("REF", "F8").and_then(|r| r.element(2)),
            Some("ICN778899")
        );
        let line = claim.child("2400").expect("2400");
        assert_eq!(
            line.segment("SV1").and_then(|s| s.component(1, 3)),
            Some("25")
        );
        let adjudication = line.child("2430").expect("2430");
        assert_eq!(
            adjudication.trigger().and_then(|s| s.element(2)),
            Some("64")
        );
        assert_eq!(adjudication.segments_named("CAS").count(), 2);
        assert!(adjudication.segment_with("DTP", "573").is_some());
    });
}

#[test]
fn institutional_837_attending_provider_and_statement_period() {
    with_single_set(&fixture("837i.x12"), |set| {
        assert_eq!(set.guide().kind, TransactionKind::Institutional);
        let claim = set.loops("2300").next().expect("claim");
        assert_eq!(claim.parent().map(|l| l.id()), Some("2000B"));
        let period = claim.segment_with("DTP", "434").map(|d| d.period(2));
        assert!(matches!(period, Some(Ok(Some(Period::Range(a, b)))) if a == b));
        assert_eq!(claim.trigger().and_then(|c| c.component(5, 2)), Some("A"));
        assert_eq!(claim.segments_named("HI").count(), 4);
        assert_eq!(ids(claim.children()), ["2310A", "2400", "2400"]);
        let line = claim.children_named("2400").nth(1).expect("line 2");
        assert_eq!(line.segment("SV2").and_then(|s| s.element(1)), Some("0730"));
    });
}

#[test]
fn dental_837_tooth_and_rendering() {
    with_single_set(&fixture("837d.x12"), |set| {
        assert_eq!(set.guide().kind, TransactionKind::Dental);
        let claim = set.loops("2300").next().expect("claim");
        assert_eq!(ids(claim.children()), ["2310B", "2400", "2400"]);
        let line = claim.children_named("2400").nth(1).expect("line 2");
        let too = line.segment("TOO").expect("TOO");
        assert_eq!(
            (too.element(2), too.component(3, 2)),
            (Some("30"), Some("O"))
        );
        assert_eq!(
            line.segment("SV3").and_then(|s| s.component(1, 2)),
            Some("D2391")
        );
    });
}

#[test]
fn remittance_835_header_claims_services_footer() {
    with_single_set(&fixture("835.x12"), |set| {
        assert_eq!(set.guide().kind, TransactionKind::Remittance);
        assert_eq!(
            set.version(),
            "005010X221A1",
            "no ST03: version comes from GS08"
        );
        let root = set.root();
        assert_eq!(root.segment("BPR").and_then(|b| b.element(2)), Some("132"));
        assert_eq!(
            root.segment("TRN").and_then(|t| t.element(2)),
            Some("12345")
        );
        assert_eq!(ids(root.children()), ["1000A", "1000B", "2000", "FOOTER"]);
        assert!(
            root.child("1000A")
                .and_then(|l| l.segment_with("PER", "BL"))
                .is_some()
        );
        let claims: Vec<_> = set.loops("2100").collect();
        assert_eq!(claims.len(), 3);
        let reversal = claims[1].trigger().expect("CLP");
        assert_eq!(reversal.element(2), Some("22"));
        assert_eq!(
            reversal.decimal(3).map(|d| d.map(|d| d.units)),
            Ok(Some(-60))
        );
        assert_eq!(claims[0].children_named("2110").count(), 4);
        let svc = claims[0].child("2110").expect("2110");
        assert_eq!(
            svc.segment_with("REF", "6R").and_then(|r| r.element(2)),
            Some("1")
        );
        assert_eq!(
            svc.segment_with("AMT", "B6").and_then(|r| r.element(2)),
            Some("40")
        );
        assert_eq!(
            root.child("FOOTER")
                .and_then(|l| l.trigger())
                .map(|s| s.id()),
            Some("PLB")
        );
        assert_eq!(root.segments().last().map(|s| s.id()), Some("SE"));
    });
}

#[test]
fn enrollment_834_members_and_coverages() {
    with_single_set(&fixture("834.x12"), |set| {
        assert_eq!(set.guide().kind, TransactionKind::Enrollment);
        assert_eq!(
            ids(set.root().children()),
            ["1000A", "1000B", "2000", "2000", "2000"]
        );
        let members: Vec<_> = set.loops("2000").collect();
        let first = members[0];
        assert_eq!(first.trigger().and_then(|i| i.element(3)), Some("021"));
        assert_eq!(
            first.segment_with("REF", "0F").and_then(|r| r.element(2)),
            Some("123456789")
        );
        assert_eq!(ids(first.children()), ["2100A", "2300", "2300"]);
        let name = first.child("2100A").expect("2100A");
        assert_eq!(
            name.segment("DMG")
                .and_then(|d| d.date(2).ok().flatten())
                .map(|d| d.year),
            Some(1980)
        );
        let plans: Vec<_> = first
            .children_named("2300")
            .filter_map(|h| h.trigger()?.element(3))
            .collect();
        assert_eq!(plans, ["HLT", "DEN"]);
        assert_eq!(members[2].trigger().and_then(|i| i.element(3)), Some("024"));
    });
}

/// Re-joins segments with other layouts; every variant must read the same.
fn relayout(bytes: &[u8], between: &[u8]) -> Vec<u8> {
    let text = String::from_utf8(bytes.to_vec()).expect("ascii fixture");
    let mut out = Vec::new();
    for seg in text.split("~\n").filter(|s| !s.is_empty()) {
        out.extend_from_slice(seg.trim_end_matches('~').as_bytes());
        out.push(b'~');
        out.extend_from_slice(between);
    }
    out
}

fn summary(bytes: &[u8]) -> Vec<(String, usize, usize)> {
    Reader::new(bytes)
        .expect("X12")
        .map(|s| {
            let s = s.expect("valid");
            (
                s.control_number().to_string(),
                s.segments().len(),
                s.loops("2400").count(),
            )
        })
        .collect()
}

#[test]
fn layout_is_tolerated_bom_crlf_one_line_indent_trailing_space() {
    let base = fixture("837p.x12");
    let expected = summary(&base);
    let mut with_bom = b"\xEF\xBB\xBF".to_vec();
    with_bom.extend_from_slice(&base);
    let mut trailing = base.clone();
    trailing.extend_from_slice(b"\r\n  \n\t");
    for variant in [
        with_bom,
        relayout(&base, b"\r\n"),
        relayout(&base, b""),
        relayout(&base, b"\r\n    "),
        trailing,
    ] {
        assert_eq!(summary(&variant), expected);
    }
}

#[test]
fn line_feed_as_segment_terminator() {
    let base = fixture("837p.x12");
    let text = String::from_utf8(base)
        .expect("ascii")
        .replace("~\n", "\r\n");
    let mut bytes = text.into_bytes();
    // ISA byte 105 is the terminator: now LF, and every line ends in CRLF.
    bytes[105] = b'\n';
    bytes[104] = b':';
    let fixed: Vec<u8> = bytes
        .iter()
        .enumerate()
        .filter(|(i, b)| !(*i == 105 - 1 + 1 && **b == b'\r'))
        .map(|(_, b)| *b)
        .collect();
    let expected = summary(&fixture("837p.x12"));
    assert_eq!(summary(&fixed), expected);
}

#[test]
fn several_groups_and_sets_in_one_interchange() {
    let p = fixture("837p.x12");
    let text = String::from_utf8(p).expect("ascii");
    let lines: Vec<&str> = text.lines().collect();
    let set: Vec<&str> = lines[2..lines.len() - 2].to_vec();
    let mut out = vec![lines[0].to_string()];
    for g in 1..=3 {
        out.push(format!(
            "GS*HC*SUBMITTERID*RECEIVERID*20240115*1200*{g}*X*005010X222A1~"
        ));
        for s in 1..=2 {
            for seg in &set {
                out.push(seg.replace("0021", &format!("{g}{s:03}")));
            }
        }
        out.push(format!("GE*2*{g}~"));
    }
    out.push("IEA*3*000000905~".into());
    let bytes = out.join("\n").into_bytes();
    let mut reader = Reader::new(&bytes).expect("X12");
    let controls: Vec<String> = reader
        .by_ref()
        .map(|s| s.expect("valid").control_number().to_string())
        .collect();
    assert_eq!(controls, ["1001", "1002", "2001", "2002", "3001", "3002"]);
    let report = reader.finish();
    assert!(report.is_clean(), "{:?}", report.errors);
    assert_eq!((report.groups, report.sets), (3, 6));
}

#[test]
fn several_interchanges_with_different_delimiters() {
    let a = fixture("837p.x12");
    let b = String::from_utf8(fixture("835.x12"))
        .expect("ascii")
        .replace('*', "|")
        .replace('~', "\n")
        .replace("\n\n", "\n");
    let mut bytes = a.clone();
    bytes.extend_from_slice(b.as_bytes());
    let parsed = x12::read(&bytes).expect("X12");
    assert!(parsed.envelope.is_clean(), "{:?}", parsed.envelope.errors);
    let kinds: Vec<_> = parsed
        .sets
        .iter()
        .map(|s| s.as_ref().map(|s| s.guide().kind).ok())
        .collect();
    assert_eq!(
        kinds,
        [
            Some(TransactionKind::Professional),
            Some(TransactionKind::Remittance)
        ]
    );
}

/// A reader that returns a few bytes per call, to exercise buffering.
struct Trickle<'a>(&'a [u8], usize);

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.1.min(buf.len()).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[test]
fn stream_reader_matches_in_memory_reader() {
    let mut inputs: Vec<Vec<u8>> = [
        "837p.x12",
        "837p_cob.x12",
        "837i.x12",
        "837d.x12",
        "835.x12",
        "834.x12",
    ]
    .iter()
    .map(|n| fixture(n))
    .collect();
    inputs.push(x12::generate::generate_837p(300, 3));
    inputs.push(x12::generate::generate_834(200, 3));
    for bytes in &inputs {
        let expected = summary(bytes);
        for chunk in [1, 7, 4096] {
            let mut stream = StreamReader::new(Trickle(bytes, chunk));
            let got: Vec<_> = stream
                .by_ref()
                .map(|owned| {
                    let owned = owned.expect("no fatal error");
                    let set = owned.parse().expect("valid");
                    (
                        set.control_number().to_string(),
                        set.segments().len(),
                        set.loops("2400").count(),
                    )
                })
                .collect();
            assert_eq!(got, expected);
            assert!(stream.finish().is_clean());
        }
    }
}

#[test]
fn segment_positions_are_one_based_in_set_and_file() {
    with_single_set(&fixture("837p.x12"), |set| {
        let clm = set
            .loops("2300")
            .next()
            .and_then(|c| c.trigger())
            .expect("CLM");
        assert_eq!(clm.position_in_file(), 29);
        assert_eq!(clm.position_in_set(), 27);
        assert_eq!(set.loop_of(clm).id(), "2300");
    });
}
