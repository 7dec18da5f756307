//! 278 (005010X217) → PDex Prior Authorization: not mapped yet; every 278
//! set is rejected with that reason until it is.

use x12::{ErrorKind, TransactionSet};

use crate::changes::Changes;
use crate::{MapResult, MappingConfig};

pub fn map(set: &TransactionSet<'_>, _config: &MappingConfig, _out: &mut Changes<'_>) -> MapResult {
    let st = set.segments().first().map(|s| {
        x12::X12Error::new(
            ErrorKind::UnsupportedTransaction,
            s.position(),
            "278 prior authorizations are read but not mapped yet",
        )
    });
    Err(st.into_iter().collect())
}
