//! The one sequence of challenges a sign-in may go through, and where a session stands.
//!
//! Define and Create both read Cognito's `session` list through [`progress`], so the
//! challenge Create builds is always the one Define asked for.

/// The name Cognito gives every challenge our triggers define.
pub const CUSTOM_CHALLENGE: &str = "CUSTOM_CHALLENGE";

/// One step of the sequence, named in `challengeMetadata`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Demographics,
    EmailCode,
    Consent,
}

impl Phase {
    /// The order every successful sign-in follows.
    pub const SEQUENCE: [Phase; 3] = [Phase::Demographics, Phase::EmailCode, Phase::Consent];

    pub fn metadata(self) -> &'static str {
        match self {
            Phase::Demographics => "DEMOGRAPHICS",
            Phase::EmailCode => "EMAIL_OTP",
            Phase::Consent => "CONSENT",
        }
    }

    pub fn from_metadata(text: &str) -> Option<Phase> {
        Phase::SEQUENCE.into_iter().find(|p| p.metadata() == text)
    }
}

/// Where a session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Ask `phase` next; `retry` when the previous answer to the same phase was wrong
    /// (only ever the email code, which allows a few tries).
    Ask { phase: Phase, retry: bool },
    /// Exactly DEMOGRAPHICS ✔, EMAIL_OTP ✔ (after at most `code_tries - 1` wrong codes),
    /// CONSENT ✔: the only state in which tokens may be issued.
    Complete,
    /// Anything else: a wrong answer to a question or the consent, too many wrong
    /// codes, an unknown or foreign challenge, a swapped or repeated step, a `null` entry.
    Broken,
}

/// Walks the session. Every entry must be our custom challenge for the phase due, and
/// only the email code may be answered wrongly (fewer than `code_tries` times).
pub fn progress(session: &[Option<super::event::SessionEntry>], code_tries: u32) -> Progress {
    let mut position = 0;
    let mut wrong_codes = 0;
    for entry in session {
        let Some(entry) = entry else {
            return Progress::Broken;
        };
        let phase = entry
            .challenge_metadata
            .as_deref()
            .and_then(Phase::from_metadata);
        let due = Phase::SEQUENCE.get(position).copied();
        if entry.challenge_name != CUSTOM_CHALLENGE || phase.is_none() || phase != due {
            return Progress::Broken;
        }
        if entry.challenge_result {
            position += 1;
            wrong_codes = 0;
        } else if phase == Some(Phase::EmailCode) && wrong_codes + 1 < code_tries {
            wrong_codes += 1;
        } else {
            return Progress::Broken;
        }
    }
    match Phase::SEQUENCE.get(position) {
        Some(&phase) => Progress::Ask {
            phase,
            retry: wrong_codes > 0,
        },
        None => Progress::Complete,
    }
}
