use edi_fhir::{Change, TransactionSetResult};

use super::*;

fn envelope() -> AckEnvelope {
    AckEnvelope {
        sender_id: "RECEIVERID".into(),
        receiver_id: "SUBMITTERID".into(),
        date: "20240116".into(),
        time: "0830".into(),
        control_number: 42,
        production: false,
    }
}

fn set(control: &str, outcome: SetOutcome) -> TransactionSetResult {
    TransactionSetResult {
        group_control_number: "905".into(),
        control_number: control.into(),
        transaction_type: "837P".into(),
        implementation_guide: "005010X222A1".into(),
        outcome,
        warnings: Vec::new(),
    }
}

fn accepted() -> SetOutcome {
    SetOutcome::Accepted {
        changes: Vec::<Change>::new(),
        claims: 1,
    }
}

fn problem(
    level: ProblemLevel,
    position: Option<usize>,
    id: &str,
    element: Option<&str>,
    code: &str,
) -> Problem {
    Problem {
        segment_position: position,
        file_segment_position: position.map(|p| p + 2),
        segment_id: Some(id.into()),
        element: element.map(str::to_owned),
        level,
        code: code.into(),
        message: "test".into(),
    }
}

fn conversion(sets: Vec<TransactionSetResult>) -> FileConversion {
    FileConversion {
        interchange_control_number: Some("000000905".into()),
        sender_id: Some("SUBMITTERID".into()),
        receiver_id: Some("RECEIVERID".into()),
        transaction_sets: sets,
        file_problems: Vec::new(),
        rejects_everything: false,
    }
}

fn segments(ack: &str) -> Vec<&str> {
    ack.split("~\n").filter(|s| !s.is_empty()).collect()
}

#[test]
fn an_accepted_file_is_acknowledged_with_ak9_a() {
    let ack =
        generate_999(&conversion(vec![set("0001", accepted())]), &envelope()).unwrap_or_default();
    let segs = segments(&ack);
    assert_eq!(segs.len(), 10, "{ack}");
    assert_eq!(segs[0].len(), 105, "ISA is fixed width: {}", segs[0]);
    assert!(segs[0].ends_with("*000000042*0*T*:"));
    assert_eq!(
        segs[1],
        "GS*FA*RECEIVERID*SUBMITTERID*20240116*0830*42*X*005010X231A1"
    );
    assert_eq!(segs[2], "ST*999*0001*005010X231A1");
    assert_eq!(segs[3], "AK1*HC*905*005010X222A1");
    assert_eq!(segs[4], "AK2*837*0001*005010X222A1");
    assert_eq!(segs[5], "IK5*A");
    assert_eq!(segs[6], "AK9*A*1*1*1");
    assert_eq!(segs[7], "SE*6*0001");
    assert_eq!(segs[8], "GE*1*42");
    assert_eq!(segs[9], "IEA*1*000000042");
}

#[test]
fn a_rejected_set_gets_ik3_ik4_ik5_r_and_the_group_is_partial() {
    let problems = vec![
        problem(ProblemLevel::Element, Some(19), "CLM", Some("CLM05-3"), "7"),
        problem(ProblemLevel::Element, Some(19), "CLM", Some("CLM02"), "6"),
        problem(ProblemLevel::Segment, Some(23), "HL", None, "7"),
    ];
    let file = conversion(vec![
        set("0001", accepted()),
        set("0002", SetOutcome::Rejected { problems }),
    ]);
    let ack = generate_999(&file, &envelope()).unwrap_or_default();
    let segs = segments(&ack);
    let body: Vec<&str> = segs[4..segs.len() - 2].to_vec();
    assert_eq!(
        body,
        [
            "AK2*837*0001*005010X222A1",
            "IK5*A",
            "AK2*837*0002*005010X222A1",
            "IK3*CLM*19**8",
            "IK4*5:3**7",
            "IK4*2**6",
            "IK3*HL*23**7",
            "IK5*R*5",
            "AK9*P*2*2*1",
            "SE*12*0001",
        ]
    );
}

#[test]
fn set_level_codes_go_to_ik5_and_group_problems_reject_the_group() {
    let rejected = SetOutcome::Rejected {
        problems: vec![problem(
            ProblemLevel::Set,
            Some(40),
            "SE",
            Some("SE01"),
            "4",
        )],
    };
    let mut file = conversion(vec![set("0001", rejected), set("0002", accepted())]);
    file.rejects_everything = true;
    file.file_problems = vec![problem(ProblemLevel::Group, None, "GE", Some("GE01"), "5")];
    let ack = generate_999(&file, &envelope()).unwrap_or_default();
    assert!(
        ack.contains("AK2*837*0001*005010X222A1~\nIK5*R*4~\n"),
        "{ack}"
    );
    assert!(ack.contains("AK9*R*2*2*1*5~\n"), "{ack}");
}

#[test]
fn one_st_999_per_functional_group_and_none_without_sets() {
    let mut second = set("0001", accepted());
    second.group_control_number = "906".into();
    second.transaction_type = "835".into();
    let file = conversion(vec![set("0001", accepted()), second]);
    let ack = generate_999(&file, &envelope()).unwrap_or_default();
    assert!(
        ack.contains("ST*999*0002*005010X231A1~\nAK1*HP*906*"),
        "{ack}"
    );
    assert!(ack.contains("GE*2*42"), "{ack}");
    assert_eq!(generate_999(&conversion(Vec::new()), &envelope()), None);
}

#[test]
fn copied_values_cannot_inject_delimiters() {
    let mut hostile = set("00*1~X", accepted());
    hostile.implementation_guide = "A:B^C".into();
    let mut file = conversion(vec![hostile]);
    file.sender_id = Some("A*VERY~LONG:SENDER^ID12345".into());
    let envelope = AckEnvelope {
        receiver_id: "A*VERY~LONG:SENDER^ID12345".into(),
        ..envelope()
    };
    let ack = generate_999(&file, &envelope).unwrap_or_default();
    assert!(ack.contains("AK2*837*001X*ABC~"), "{ack}");
    let isa = segments(&ack)[0];
    assert_eq!(isa.len(), 105, "{isa}");
    assert!(isa.contains("*ZZ*AVERYLONGSENDER*"), "{isa}");
}
