//! Writes a generated X12 file of about the size asked, for benchmarks:
//! `cargo run --release -p x12 --example generate -- 837p 100 claims.x12`
//! (kind: 837p, 837i, 837d, 835 or 834; size in MB).

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [kind, mb, path] = args.as_slice() else {
        eprintln!("usage: generate KIND MB FILE (KIND: 837p, 837i, 837d, 835, 834)");
        return ExitCode::from(2);
    };
    let generator: fn(usize, u64) -> Vec<u8> = match kind.to_ascii_lowercase().as_str() {
        "837p" => x12::generate::generate_837p,
        "837i" => x12::generate::generate_837i,
        "837d" => x12::generate::generate_837d,
        "835" => x12::generate::generate_835,
        "834" => x12::generate::generate_834,
        other => {
            eprintln!("unknown kind {other}");
            return ExitCode::from(2);
        }
    };
    let Ok(mb) = mb.parse::<f64>() else {
        eprintln!("size {mb} is not a number of MB");
        return ExitCode::from(2);
    };
    let (bytes, claims) = x12::generate::of_size(generator, mb);
    match std::fs::write(path, bytes) {
        Ok(()) => {
            println!("{claims}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{path}: {e}");
            ExitCode::FAILURE
        }
    }
}
