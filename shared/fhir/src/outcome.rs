use serde_json::{Value, json};

/// `OperationOutcome.issue.severity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Fatal,
    Error,
    Warning,
    Information,
}

/// The subset of the FHIR `issue-type` value set this server reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueCode {
    Invalid,
    Structure,
    Required,
    Value,
    Security,
    Login,
    Forbidden,
    NotFound,
    NotSupported,
    Deleted,
    TooCostly,
    Throttled,
    Conflict,
    Exception,
    Informational,
    /// The request was understood but could not be processed (e.g. `$member-match`
    /// found no unique member).
    Processing,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Fatal => "fatal",
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Information => "information",
        }
    }
}

impl IssueCode {
    fn as_str(self) -> &'static str {
        match self {
            IssueCode::Invalid => "invalid",
            IssueCode::Structure => "structure",
            IssueCode::Required => "required",
            IssueCode::Value => "value",
            IssueCode::Security => "security",
            IssueCode::Login => "login",
            IssueCode::Forbidden => "forbidden",
            IssueCode::NotFound => "not-found",
            IssueCode::NotSupported => "not-supported",
            IssueCode::Deleted => "deleted",
            IssueCode::TooCostly => "too-costly",
            IssueCode::Throttled => "throttled",
            IssueCode::Conflict => "conflict",
            IssueCode::Exception => "exception",
            IssueCode::Informational => "informational",
            IssueCode::Processing => "processing",
        }
    }
}

/// An `OperationOutcome` with one or more issues.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationOutcome {
    issues: Vec<(Severity, IssueCode, String)>,
}

impl OperationOutcome {
    pub fn new(severity: Severity, code: IssueCode, diagnostics: impl Into<String>) -> Self {
        OperationOutcome {
            issues: vec![(severity, code, diagnostics.into())],
        }
    }

    pub fn error(code: IssueCode, diagnostics: impl Into<String>) -> Self {
        OperationOutcome::new(Severity::Error, code, diagnostics)
    }

    pub fn with_issue(
        mut self,
        severity: Severity,
        code: IssueCode,
        diagnostics: impl Into<String>,
    ) -> Self {
        self.issues.push((severity, code, diagnostics.into()));
        self
    }

    pub fn to_json(&self) -> Value {
        let issues: Vec<Value> = self
            .issues
            .iter()
            .map(|(severity, code, diagnostics)| {
                json!({"severity": severity.as_str(), "code": code.as_str(), "diagnostics": diagnostics})
            })
            .collect();
        json!({"resourceType": "OperationOutcome", "issue": issues})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_fhir_operation_outcome() {
        let oo =
            OperationOutcome::error(IssueCode::NotFound, "ExplanationOfBenefit/x is not known")
                .with_issue(Severity::Warning, IssueCode::Informational, "extra");
        let json = oo.to_json();
        assert_eq!(json["resourceType"], "OperationOutcome");
        assert_eq!(json["issue"][0]["code"], "not-found");
        assert_eq!(json["issue"][0]["severity"], "error");
        assert_eq!(json["issue"][1]["severity"], "warning");
    }
}
