//! Shared by the mapper targets: wraps fuzzed segments in a valid ISA/GS/ST
//! envelope with correct counts, so libFuzzer spends its time inside the
//! mapper instead of on envelope errors.

/// `body` is segments separated by `~`; returns a complete interchange.
pub fn wrap(st01: &str, version: &str, gs01: &str, body: &[u8]) -> Vec<u8> {
    let segments = body.iter().filter(|b| **b == b'~').count() + 2;
    let mut out = Vec::with_capacity(body.len() + 256);
    out.extend_from_slice(
        b"ISA*00*          *00*          *ZZ*SUBMITTER      *ZZ*RECEIVER       *240115*1200*^*00501*000000101*0*T*:~",
    );
    out.extend_from_slice(
        format!(
            "GS*{gs01}*SUBMITTER*RECEIVER*20240115*1200*101*X*{version}~ST*{st01}*0001*{version}~"
        )
        .as_bytes(),
    );
    out.extend_from_slice(body);
    if !body.ends_with(b"~") {
        out.push(b'~');
    }
    out.extend_from_slice(format!("SE*{segments}*0001~GE*1*101~IEA*1*000000101~").as_bytes());
    out
}

/// Converts and folds: the mapper and the merge rule must not panic. The
/// streaming conversion (which the ingest's apply pass uses) and the
/// verdict-only one (its first pass) must accept and reject the same sets, or
/// the ingest would apply a set its report calls rejected.
pub fn run(bytes: &[u8]) {
    let config = edi_fhir::MappingConfig {
        payer_id: "999996666".into(),
        payer_name: "KEY INSURANCE COMPANY".into(),
        default_network_status: edi_fhir::NetworkStatus::InNetwork,
    };
    let conversion = edi_fhir::convert(bytes, &config);
    let _ = edi_fhir::fold(conversion.changes());
    let accepted = |set: &edi_fhir::TransactionSetResult| {
        matches!(set.outcome, edi_fhir::SetOutcome::Accepted { .. })
    };
    let mut streamed = Vec::new();
    edi_fhir::stream_changes(bytes, &config, |event| {
        if let edi_fhir::Event::Set(set) = event {
            streamed.push(accepted(set));
        }
    });
    let mut verdicts = Vec::new();
    edi_fhir::verdicts(bytes, &config, |set| verdicts.push(accepted(set)));
    assert_eq!(streamed, verdicts, "streaming and verdict passes disagree");
}
