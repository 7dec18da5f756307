//! Quick scaling check: `cargo run --release -p edi-fhir --example timing -- 5000 10000`.
use std::time::Instant;

fn main() {
    let config = edi_fhir::MappingConfig {
        payer_id: "999996666".into(),
        payer_name: "KEY".into(),
        default_network_status: edi_fhir::NetworkStatus::InNetwork,
    };
    for n in std::env::args()
        .skip(1)
        .filter_map(|a| a.parse::<usize>().ok())
    {
        let bytes = x12::generate::generate_837p(n, 42);
        let t = Instant::now();
        let c = edi_fhir::convert(&bytes, &config);
        let map_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let mut total = 0;
        for ch in c.changes() {
            if let edi_fhir::Action::Merge(r) = &ch.action {
                total += r.json().len();
            }
        }
        let ser_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let mut streamed = 0;
        let mut json = Vec::new();
        edi_fhir::stream_changes(bytes.as_slice(), &config, |e| {
            if let edi_fhir::Event::Change(c) = e
                && let edi_fhir::Action::Merge(r) = c.action
            {
                json.clear();
                json.extend_from_slice(r.json().as_bytes());
                streamed += json.len();
            }
        });
        let stream_s = t.elapsed().as_secs_f64();
        println!(
            "  streaming (validate + map + serialise): {stream_s:.3}s, {:.1} MB json, {:.0} MB/s, {:.0} claims/s",
            streamed as f64 / 1e6,
            bytes.len() as f64 / 1e6 / stream_s,
            n as f64 / stream_s
        );
        println!(
            "{n} claims, {:.1} MB: map {map_s:.3}s, serialise {ser_s:.3}s, {} changes, {:.1} MB json, {:.0} MB/s",
            bytes.len() as f64 / 1e6,
            c.changes().count(),
            total as f64 / 1e6,
            bytes.len() as f64 / 1e6 / (map_s + ser_s)
        );
    }
}
