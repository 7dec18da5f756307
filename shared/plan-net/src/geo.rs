//! Geohash cells and distances for `near`.
//!
//! Design (DynamoDB-friendly): every Location with a `position` stores one look-up
//! term, its geohash at [`STORED_PRECISION`] characters, under `near`. A geohash
//! prefix is a rectangle, and every point in it has a hash starting with that prefix,
//! so "everything in the cell" is one Query on the `near` look-up partition with
//! `begins_with(prefix)`. A `near` search picks the longest prefix whose cells are at
//! least as tall and wide as the search radius ([`cover`]); then the centre cell and
//! its eight neighbours contain the whole circle, so nine prefix Queries find every
//! candidate. Candidates are then checked by great-circle distance and sorted nearest
//! first. Cells shrink towards the poles in width, which [`cover`] accounts for.

/// Characters of geohash stored per Location (~4.8 m × 4.8 m cells at 9).
pub const STORED_PRECISION: usize = 9;
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
/// the point: the centre cell and its eight neighbours at the longest precision whose
/// cells are at least `radius_km` tall and wide (never shorter than 1 character),
/// deduplicated and sorted.
pub fn cover(lat: f64, lon: f64, radius_km: f64) -> Vec<String> {
    let km_per_degree = EARTH_KM.to_radians();
    // The narrowest cell width is at the circle's edge nearest a pole.
    let edge_lat = (lat.abs() + radius_km / km_per_degree).min(89.9);
    let mut precision = 1;
    for p in (1..=STORED_PRECISION).rev() {
        let (h, w) = cell_degrees(p);
        let height_km = h * km_per_degree;
        let width_km = w * km_per_degree * edge_lat.to_radians().cos();
        if height_km >= radius_km && width_km >= radius_km {
            precision = p;
            break;
        }
    }
    let (h, w) = cell_degrees(precision);
    let mut cells: Vec<String> = Vec::with_capacity(9);
    for dlat in [-h, 0.0, h] {
        for dlon in [-w, 0.0, w] {
            let y = (lat + dlat).clamp(-90.0, 90.0);
            let mut x = lon + dlon;
            if x >= 180.0 {
                x -= 360.0;
            } else if x < -180.0 {
                x += 360.0;
            }
            cells.push(encode(y, x, precision));
        }
    }
    cells.sort();
    cells.dedup();
    cells
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
    fn the_cover_contains_every_point_within_the_radius() {
        let centre = (39.9612, -82.9988);
        for radius in [0.5, 5.0, 25.0, 100.0, 300.0] {
            let cells = cover(centre.0, centre.1, radius);
            assert!(cells.len() <= 9);
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
