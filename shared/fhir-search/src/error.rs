/// A search the server cannot run as asked: answered with 400 and an
/// OperationOutcome whose diagnostics is this error's `Display` text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("search parameter '{param}': {reason}")]
pub struct SearchError {
    /// The parameter as the client sent it, modifier included (e.g. `name:fuzzy`).
    pub param: String,
    /// A plain-language reason, written for the client developer.
    pub reason: String,
}

impl SearchError {
    pub fn new(param: impl Into<String>, reason: impl Into<String>) -> Self {
        SearchError {
            param: param.into(),
            reason: reason.into(),
        }
    }
}
