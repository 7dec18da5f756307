//! Geohash cells and distances for `near`.
//!
//! Design (DynamoDB-friendly): every Location with a `position` stores one look-up
//! term under `near`: its geohash at [`STORED_PRECISION`] characters followed by the
//! exact coordinates ([`near_term`], `dnjw1m8xh|39.9612|-82.9988`). A geohash prefix
//! is a rectangle, and every point in it has a hash starting with that prefix, so
//! "everything in the cell" is one Query on the `near` look-up partition with
//! `begins_with(prefix)`. A `near` search takes the cells of the longest prefix
//! whose cells overlapping the circle's bounding box are at most [`MAX_CELLS`]
//! ([`cover`]): a few Queries over an area a few times the circle's. The
//! coordinates in the term let the search check the great-circle distance and order
//! nearest first from the keys alone, reading no Location (terms written before
//! they carried coordinates are checked against the stored index instead).

/// Characters of geohash stored per Location (~4.8 m × 4.8 m cells at 9).
pub const STORED_PRECISION: usize = 9;
/// The most cells (one prefix Query each) a `near` search reads.
pub const MAX_CELLS: usize = 16;
/// Separates the geohash and the coordinates in a `near` term; sorts below every
/// base-32 character, so terms stay in geohash order.
const POSITION_SEPARATOR: char = '|';
/// A `near` term longer than this keeps the geohash alone (look-up terms are cut
/// at 128 characters; shortest round-trip decimals of valid coordinates never come
/// near it).
const MAX_NEAR_TERM: usize = 128;
const BASE32: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
/// Mean Earth radius, km.
const EARTH_KM: f64 = 6371.0088;

/// A valid WGS84 position.
pub fn valid(lat: f64, lon: f64) -> bool {
    lat.is_finite()
        && lon.is_finite()
        && (-90.0..=90.0).contains(&lat)
        && (-180.0..=180.0).contains(&lon)
}

/// The geohash of a point at `precision` characters.
pub fn encode(lat: f64, lon: f64, precision: usize) -> String {
    let (mut lat_lo, mut lat_hi) = (-90.0_f64, 90.0_f64);
    let (mut lon_lo, mut lon_hi) = (-180.0_f64, 180.0_f64);
    let mut out = String::with_capacity(precision);
    let mut even = true;
    let mut bits = 0u8;
    let mut value = 0usize;
    while out.len() < precision {
        if even {
            let mid = (lon_lo + lon_hi) / 2.0;
            value <<= 1;
            if lon >= mid {
                value |= 1;
                lon_lo = mid;
            } else {
                lon_hi = mid;
            }
        } else {
            let mid = (lat_lo + lat_hi) / 2.0;
            value <<= 1;
            if lat >= mid {
                value |= 1;
                lat_lo = mid;
            } else {
                lat_hi = mid;
            }
        }
        even = !even;
        bits += 1;
        if bits == 5 {
            out.push(char::from(BASE32[value]));
            bits = 0;
            value = 0;
        }
    }
    out
}

/// The `near` look-up term of a position: the geohash, then the coordinates as the
/// shortest decimals that parse back to the same `f64` (so distances computed from
/// the term equal those computed from the stored index, bit for bit).
pub fn near_term(lat: f64, lon: f64) -> String {
    let hash = encode(lat, lon, STORED_PRECISION);
    let term = format!("{hash}{POSITION_SEPARATOR}{lat}{POSITION_SEPARATOR}{lon}");
    if term.len() <= MAX_NEAR_TERM && term_position(&term) == Some([lat, lon]) {
        term
    } else {
        hash
    }
}

/// The position a `near` term carries; `None` for a bare geohash.
pub fn term_position(term: &str) -> Option<[f64; 2]> {
    let mut parts = term.split(POSITION_SEPARATOR);
    let (_hash, lat, lon) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let (lat, lon) = (lat.parse::<f64>().ok()?, lon.parse::<f64>().ok()?);
    valid(lat, lon).then_some([lat, lon])
}

/// Height and width in degrees of a cell of `precision` characters.
fn cell_degrees(precision: usize) -> (f64, f64) {
    let bits = 5 * precision as i32;
    let lon_bits = (bits + 1) / 2;
    let lat_bits = bits / 2;
    (180.0 / 2f64.powi(lat_bits), 360.0 / 2f64.powi(lon_bits))
}

/// Great-circle distance in km (haversine).
pub fn distance_km(a: [f64; 2], b: [f64; 2]) -> f64 {
    let (lat1, lat2) = (a[0].to_radians(), b[0].to_radians());
    let dlat = lat2 - lat1;
    let dlon = (b[1] - a[1]).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_KM * h.sqrt().min(1.0).asin()
}

/// The geohash prefixes whose cells together cover the circle of `radius_km` around
/// the point, deduplicated and sorted: every cell overlapping the circle's bounding
/// box (latitude ± the radius; longitude ± the widest the circle gets, all
/// longitudes when it reaches a pole), at the longest precision where those are at
/// most [`MAX_CELLS`]. Tighter than a 3 × 3 block of cells as large as the radius,
/// which reads up to nine cells each wider than the whole circle.
pub fn cover(lat: f64, lon: f64, radius_km: f64) -> Vec<String> {
    let km_per_degree = EARTH_KM.to_radians();
    let dlat = radius_km.max(0.0) / km_per_degree;
    // A hair wider than exact, so rounding never loses a point on the edge.
    let margin = 1e-7;
    let (lat_lo, lat_hi) = (
        (lat - dlat - margin).max(-90.0),
        (lat + dlat + margin).min(90.0),
    );
    let edge_lat = lat.abs() + dlat;
    let dlon = if edge_lat >= 89.9 {
        180.0
    } else {
        // The widest the circle gets (spherical), and the width at its edge nearest
        // the pole, whichever is larger: both bound it.
        let delta = dlat.to_radians();
        let exact = (delta.sin() / lat.to_radians().cos())
            .min(1.0)
            .asin()
            .to_degrees();
        (dlat / edge_lat.to_radians().cos()).max(exact) + margin
    };
    let mut chosen = None;
    for precision in (1..=STORED_PRECISION).rev() {
        let span = Span::new(precision, lat_lo, lat_hi, lon, dlon);
        if span.cells() <= MAX_CELLS as u64 {
            chosen = Some(span);
            break;
        }
    }
    let span = chosen.unwrap_or_else(|| Span::new(1, lat_lo, lat_hi, lon, dlon));
    let mut cells = span.hashes();
    cells.sort();
    cells.dedup();
    cells
}

/// The rows and columns of cells of one precision that a bounding box overlaps.
struct Span {
    precision: usize,
    height: f64,
    width: f64,
    rows: (i64, i64),
    /// First column and how many (wrapping round the antimeridian).
    columns: (i64, i64),
}

impl Span {
    fn new(precision: usize, lat_lo: f64, lat_hi: f64, lon: f64, dlon: f64) -> Span {
        let (height, width) = cell_degrees(precision);
        let total_rows = (180.0 / height).round() as i64;
        let total_columns = (360.0 / width).round() as i64;
        let row = |lat: f64| (((lat + 90.0) / height).floor() as i64).clamp(0, total_rows - 1);
        let rows = (row(lat_lo), row(lat_hi));
        let columns = if dlon >= 180.0 {
            (0, total_columns)
        } else {
            let first = ((lon - dlon + 180.0) / width).floor() as i64;
            let last = ((lon + dlon + 180.0) / width).floor() as i64;
            (first, (last - first + 1).min(total_columns))
        };
        Span {
            precision,
            height,
            width,
            rows,
            columns,
        }
    }

    fn cells(&self) -> u64 {
        let rows = (self.rows.1 - self.rows.0 + 1).max(0) as u64;
        rows.saturating_mul(self.columns.1.max(0) as u64)
    }

    /// The geohash of each cell, from its centre.
    fn hashes(&self) -> Vec<String> {
        let total_columns = (360.0 / self.width).round() as i64;
        let mut out = Vec::new();
        for row in self.rows.0..=self.rows.1 {
            let lat = -90.0 + (row as f64 + 0.5) * self.height;
            for k in 0..self.columns.1 {
                let column = (self.columns.0 + k).rem_euclid(total_columns);
                let lon = -180.0 + (column as f64 + 0.5) * self.width;
                out.push(encode(lat, lon, self.precision));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_wikipedia_example() {
        // geohash.org: 57.64911,10.40744 is u4pruydqqvj.
        assert_eq!(encode(57.64911, 10.40744, 11), "u4pruydqqvj");
    }

    #[test]
    fn columbus_to_cleveland_is_about_200_km() {
        let d = distance_km([39.9612, -82.9988], [41.4993, -81.6944]);
        assert!((195.0..=206.0).contains(&d), "{d}");
    }

    #[test]
    fn near_terms_carry_the_exact_position_after_the_geohash() {
        for (lat, lon) in [
            (39.9612, -82.9988),
            (-0.0, 179.99999999999997),
            (1e-300, -1e-300),
            (90.0, -180.0),
        ] {
            let term = near_term(lat, lon);
            assert!(term.starts_with(&encode(lat, lon, STORED_PRECISION)));
            assert!(term.len() <= MAX_NEAR_TERM);
            if let Some(position) = term_position(&term) {
                assert_eq!(position, [lat, lon]);
            }
        }
        assert_eq!(
            term_position(&near_term(38.519999999999996, -84.8)),
            Some([38.519999999999996, -84.8])
        );
        assert_eq!(
            term_position("dnjw1m8xh"),
            None,
            "a bare geohash (stored before) has none"
        );
    }

    #[test]
    fn the_cover_is_tight_and_contains_every_point_within_the_radius_everywhere() {
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut centres = vec![
            (39.0, -84.75),
            (89.95, 10.0),
            (-89.99, -170.0),
            (0.0, 179.999),
            (60.0, -179.99),
        ];
        for _ in 0..200 {
            centres.push((next() * 180.0 - 90.0, next() * 360.0 - 180.0));
        }
        for (lat, lon) in centres {
            for radius in [0.05, 0.5, 5.0, 25.0, 100.0, 300.0] {
                let cells = cover(lat, lon, radius);
                assert!(
                    !cells.is_empty() && cells.len() <= MAX_CELLS,
                    "{lat},{lon} {radius}: {}",
                    cells.len()
                );
                for step in 0..48 {
                    let bearing = f64::from(step) * 7.5_f64.to_radians();
                    let fraction = [1.0, 0.999, 0.5][step as usize % 3];
                    let (plat, plon) = destination(lat, lon, radius * fraction, bearing);
                    if distance_km([lat, lon], [plat, plon]) > radius {
                        continue;
                    }
                    let hash = encode(plat, plon, STORED_PRECISION);
                    assert!(
                        cells.iter().any(|c| hash.starts_with(c.as_str())),
                        "{lat},{lon} {radius} km: {plat},{plon} not covered by {cells:?}"
                    );
                }
            }
        }
        // 5 km at the benchmark's latitude: cells of precision 5 (about 4.9 × 3.8 km),
        // not four characters (about 20 × 30 km) as a 3 × 3 block needed.
        assert!(cover(39.0, -84.75, 5.0).iter().all(|c| c.len() == 5));
    }

    /// The point `km` away on `bearing` (radians) on the sphere.
    fn destination(lat: f64, lon: f64, km: f64, bearing: f64) -> (f64, f64) {
        let delta = km / EARTH_KM;
        let (phi, lambda) = (lat.to_radians(), lon.to_radians());
        let phi2 = (phi.sin() * delta.cos() + phi.cos() * delta.sin() * bearing.cos()).asin();
        let lambda2 = lambda
            + (bearing.sin() * delta.sin() * phi.cos()).atan2(delta.cos() - phi.sin() * phi2.sin());
        let mut lon2 = lambda2.to_degrees();
        while lon2 >= 180.0 {
            lon2 -= 360.0;
        }
        while lon2 < -180.0 {
            lon2 += 360.0;
        }
        (phi2.to_degrees().clamp(-90.0, 90.0), lon2)
    }

    #[test]
    fn the_cover_contains_every_point_within_the_radius() {
        let centre = (39.9612, -82.9988);
        for radius in [0.5, 5.0, 25.0, 100.0, 300.0] {
            let cells = cover(centre.0, centre.1, radius);
            assert!(cells.len() <= MAX_CELLS);
            for step in 0..72 {
                let bearing = f64::from(step) * 5.0_f64.to_radians();
                // A point at 99 % of the radius on this bearing.
                let dlat = radius * 0.99 * bearing.cos() / EARTH_KM.to_radians();
                let dlon = radius * 0.99 * bearing.sin()
                    / (EARTH_KM.to_radians() * centre.0.to_radians().cos());
                let hash = encode(centre.0 + dlat, centre.1 + dlon, STORED_PRECISION);
                assert!(
                    cells.iter().any(|c| hash.starts_with(c.as_str())),
                    "{radius} km, {step}"
                );
            }
        }
    }
}
