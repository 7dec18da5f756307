//! One X12 envelope writer (ISA..IEA, GS..GE, ST..SE) for everything that makes
//! X12: the [`crate::generate`] files, the demo's files and the 999.
//!
//! ```
//! use x12::write::{Group, Interchange, Usage, Writer};
//!
//! let mut w = Writer::new(&Interchange {
//!     sender_id: "SUBMITTER",
//!     receiver_id: "RECEIVER",
//!     date: "20240115",
//!     time: "1200",
//!     control_number: 101,
//!     usage: Usage::Test,
//! });
//! w.begin_group(&Group {
//!     functional_id: "BE",
//!     sender: "SUBMITTER",
//!     receiver: "RECEIVER",
//!     date: "20240115",
//!     time: "1200",
//!     control_number: 101,
//!     version: "005010X220A1",
//! });
//! w.begin_set("834", 1, Some("005010X220A1"));
//! w.segment("BGN*00*12456*20240115*1200****2");
//! let text = w.finish();
//! assert!(text.ends_with("SE*3*0001~\nGE*1*101~\nIEA*1*000000101~\n"));
//! assert!(x12::read(text.as_bytes()).is_ok_and(|p| p.envelope.is_clean()));
//! ```

/// What ends every segment: `~`, then a line break so the files read (and diff)
/// one segment a line. Readers skip the whitespace after a terminator.
pub const SEGMENT_END: &str = "~\n";

/// ISA15: test or production data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// `T`
    Test,
    /// `P`
    Production,
}

/// The ISA's variable fields; the rest is fixed (no authorization or security
/// information, `ZZ` qualifiers, version 00501, `^` repetition and `:` component
/// separators, no TA1 requested).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interchange<'a> {
    /// ISA06, padded (or cut) to 15 characters.
    pub sender_id: &'a str,
    /// ISA08, padded (or cut) to 15 characters.
    pub receiver_id: &'a str,
    /// `CCYYMMDD`; ISA09 is its `YYMMDD`.
    pub date: &'a str,
    /// `HHMM` (ISA10).
    pub time: &'a str,
    /// ISA13 and IEA02, written as 9 digits.
    pub control_number: u32,
    /// ISA15.
    pub usage: Usage,
}

/// A GS header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group<'a> {
    /// GS01, e.g. `HC` for 837s.
    pub functional_id: &'a str,
    /// GS02.
    pub sender: &'a str,
    /// GS03.
    pub receiver: &'a str,
    /// GS04, `CCYYMMDD`.
    pub date: &'a str,
    /// GS05, `HHMM`.
    pub time: &'a str,
    /// GS06 and GE02.
    pub control_number: u32,
    /// GS08, the implementation guide, e.g. `005010X222A1`.
    pub version: &'a str,
}

/// Writes one interchange and owns its bookkeeping: SE01 (segments in the set,
/// ST and SE included), SE02 (= ST02), GE01 (sets in the group), GE02 (= GS06),
/// IEA01 (groups) and IEA02 (= ISA13). The counts are always right, so whatever
/// the caller writes between the headers, the file passes envelope validation.
///
/// Callers write only the headers' values and the segments inside a set; an open
/// set or group is closed by the next header of its level or above, or by
/// [`Writer::finish`].
#[derive(Debug)]
pub struct Writer {
    out: String,
    isa_control: u32,
    /// GS06 of the open group, if any.
    group: Option<u32>,
    /// ST02 of the open set, if any.
    set: Option<u32>,
    segments_in_set: usize,
    sets_in_group: usize,
    groups: usize,
}

impl Writer {
    /// Starts an interchange with its ISA.
    pub fn new(isa: &Interchange<'_>) -> Self {
        // ISA is fixed width (its 106th character is the segment terminator, and
        // readers find the delimiters by position), so ids are padded or cut to 15
        // characters and the control number kept to 9 digits.
        let control = isa.control_number % 1_000_000_000;
        let short_date = isa.date.get(2..).unwrap_or(isa.date);
        let usage = match isa.usage {
            Usage::Test => 'T',
            Usage::Production => 'P',
        };
        let mut w = Self {
            out: String::new(),
            isa_control: control,
            group: None,
            set: None,
            segments_in_set: 0,
            sets_in_group: 0,
            groups: 0,
        };
        w.push(&format!(
            "ISA*00*          *00*          *ZZ*{}*ZZ*{}*{short_date}*{}*^*00501*{control:09}*0*{usage}*:",
            fixed_15(isa.sender_id),
            fixed_15(isa.receiver_id),
            isa.time,
        ));
        w
    }

    /// Opens a functional group (closing the open one, if any).
    pub fn begin_group(&mut self, gs: &Group<'_>) {
        self.end_group();
        self.groups += 1;
        self.group = Some(gs.control_number);
        self.push(&format!(
            "GS*{}*{}*{}*{}*{}*{}*X*{}",
            gs.functional_id,
            gs.sender,
            gs.receiver,
            gs.date,
            gs.time,
            gs.control_number,
            gs.version
        ));
    }

    /// Opens a transaction set `ST*{id}*{control:04}[*{st03}]` (closing the open
    /// one, if any). ST03 is the implementation guide, which most 005010 guides
    /// require and the 835's marks "not used".
    pub fn begin_set(&mut self, id: &str, control: u32, st03: Option<&str>) {
        self.end_set();
        self.sets_in_group += 1;
        self.set = Some(control);
        self.segments_in_set = 0;
        match st03 {
            Some(guide) => self.segment(&format!("ST*{id}*{control:04}*{guide}")),
            None => self.segment(&format!("ST*{id}*{control:04}")),
        }
    }

    /// Writes one segment (without its terminator) and counts it for SE01.
    pub fn segment(&mut self, segment: &str) {
        self.push(segment);
        self.segments_in_set += 1;
    }

    /// Closes the open set with its SE; does nothing when none is open.
    pub fn end_set(&mut self) {
        if let Some(control) = self.set.take() {
            let count = self.segments_in_set + 1;
            self.push(&format!("SE*{count}*{control:04}"));
        }
    }

    /// Closes the open group (and its set) with its GE; does nothing when none
    /// is open.
    pub fn end_group(&mut self) {
        self.end_set();
        if let Some(control) = self.group.take() {
            let sets = self.sets_in_group;
            self.push(&format!("GE*{sets}*{control}"));
        }
        self.sets_in_group = 0;
    }

    /// Closes whatever is open and the interchange (IEA); the file's text.
    pub fn finish(mut self) -> String {
        self.end_group();
        let (groups, control) = (self.groups, self.isa_control);
        self.push(&format!("IEA*{groups}*{control:09}"));
        self.out
    }

    fn push(&mut self, segment: &str) {
        self.out.push_str(segment);
        self.out.push_str(SEGMENT_END);
    }
}

/// An ISA06/ISA08 value: exactly 15 characters.
fn fixed_15(id: &str) -> String {
    let id: String = id.chars().take(15).collect();
    format!("{id:<15}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn isa(sender_id: &'static str, control_number: u32, usage: Usage) -> Interchange<'static> {
        Interchange {
            sender_id,
            receiver_id: "RECEIVER",
            date: "20240115",
            time: "1200",
            control_number,
            usage,
        }
    }

    fn gs(control_number: u32) -> Group<'static> {
        Group {
            functional_id: "HC",
            sender: "SUBMITTER",
            receiver: "RECEIVER",
            date: "20240115",
            time: "1200",
            control_number,
            version: "005010X222A1",
        }
    }

    fn lines(text: &str) -> Vec<&str> {
        text.lines().map(|l| l.trim_end_matches('~')).collect()
    }

    #[test]
    fn counts_sets_segments_and_groups() {
        let mut w = Writer::new(&isa("SUBMITTER", 7, Usage::Test));
        w.begin_group(&gs(1));
        w.begin_set("837", 1, Some("005010X222A1"));
        w.segment("BHT*0019*00*1*20240115*1200*CH");
        w.segment("NM1*41*2*X");
        w.begin_set("837", 2, Some("005010X222A1")); // closes set 1
        w.segment("BHT*0019*00*2*20240115*1200*CH");
        w.end_set();
        w.begin_group(&gs(2)); // closes group 1
        w.begin_set("837", 3, Some("005010X222A1"));
        let text = w.finish(); // closes set 3 and group 2
        let lines = lines(&text);
        assert_eq!(
            lines[1..],
            [
                "GS*HC*SUBMITTER*RECEIVER*20240115*1200*1*X*005010X222A1",
                "ST*837*0001*005010X222A1",
                "BHT*0019*00*1*20240115*1200*CH",
                "NM1*41*2*X",
                "SE*4*0001",
                "ST*837*0002*005010X222A1",
                "BHT*0019*00*2*20240115*1200*CH",
                "SE*3*0002",
                "GE*2*1",
                "GS*HC*SUBMITTER*RECEIVER*20240115*1200*2*X*005010X222A1",
                "ST*837*0003*005010X222A1",
                "SE*2*0003",
                "GE*1*2",
                "IEA*2*000000007",
            ]
        );
        let parsed = crate::read(text.as_bytes());
        assert!(parsed.is_ok_and(|p| p.envelope.is_clean()));
    }

    #[test]
    fn isa_is_fixed_width() {
        for (sender, control, usage) in [
            ("A", 1, Usage::Test),
            (
                "A SENDER ID LONGER THAN FIFTEEN",
                1_234_567_890,
                Usage::Production,
            ),
            ("SUBMITTER", 999_999_999, Usage::Test),
        ] {
            let text = Writer::new(&isa(sender, control, usage)).finish();
            let isa = lines(&text)[0];
            assert_eq!(isa.chars().count(), 105, "{isa}");
            let fields: Vec<&str> = isa.split('*').collect();
            assert_eq!(fields[6].chars().count(), 15);
            assert_eq!(fields[8], "RECEIVER       ");
            assert_eq!(fields[9], "240115");
            assert_eq!(fields[13].len(), 9);
            let u = if usage == Usage::Test { "T" } else { "P" };
            assert_eq!(fields[15], u);
            assert_eq!(lines(&text)[1], format!("IEA*0*{}", fields[13]));
        }
        let text = Writer::new(&isa("A", 42, Usage::Test)).finish();
        assert_eq!(
            text,
            "ISA*00*          *00*          *ZZ*A              *ZZ*RECEIVER       *240115*1200*^*00501*000000042*0*T*:~\nIEA*0*000000042~\n"
        );
    }

    #[test]
    fn st03_present_or_absent() {
        let mut w = Writer::new(&isa("SUBMITTER", 1, Usage::Test));
        w.begin_group(&gs(1));
        w.begin_set("835", 12, None);
        w.begin_set("834", 13, Some("005010X220A1"));
        let text = w.finish();
        let lines = lines(&text);
        assert_eq!(lines[2], "ST*835*0012");
        assert_eq!(lines[3], "SE*2*0012");
        assert_eq!(lines[4], "ST*834*0013*005010X220A1");
        assert_eq!(lines[5], "SE*2*0013");
        assert_eq!(lines[6], "GE*2*1");
    }
}
