//! Writing a searchset Bundle by splicing stored resource JSON into the output.
//!
//! Stored bodies are already the exact JSON we serve, so a Bundle is assembled as text
//! instead of parsing every resource into a tree and serialising it again. This is the
//! hot path of every search.

use fhir_store::ResourceRecord;

/// How a Bundle entry came to be in the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchMode {
    Match,
    Include,
}

impl SearchMode {
    fn as_str(self) -> &'static str {
        match self {
            SearchMode::Match => "match",
            SearchMode::Include => "include",
        }
    }
}

/// Builds a `searchset` Bundle as JSON text.
/// An entry's text beyond its resource and base URL: `fullUrl`, type/id, `search`.
const ENTRY_OVERHEAD: usize = 160;

pub struct SearchsetWriter {
    out: String,
    base_url: String,
    entries: usize,
}

impl SearchsetWriter {
    /// Starts a Bundle with its `self` and, when another page exists, `next` link.
    /// `total` is given only when it is known without counting beyond this page.
    pub fn new(
        base_url: &str,
        self_link: &str,
        next_link: Option<&str>,
        total: Option<usize>,
    ) -> Self {
        let mut out = String::with_capacity(16 * 1024);
        out.push_str(r#"{"resourceType":"Bundle","type":"searchset""#);
        if let Some(total) = total {
            out.push_str(&format!(r#","total":{total}"#));
        }
        out.push_str(r#","link":[{"relation":"self","url":"#);
        push_json_string(&mut out, self_link);
        out.push('}');
        if let Some(next) = next_link {
            out.push_str(r#",{"relation":"next","url":"#);
            push_json_string(&mut out, next);
            out.push('}');
        }
        out.push_str(r#"],"entry":["#);
        SearchsetWriter {
            out,
            base_url: base_url.to_owned(),
            entries: 0,
        }
    }

    /// Room for `entries` more entries whose resources take `body_bytes` in all, so a
    /// large page is written without growing the buffer again and again.
    pub fn reserve(&mut self, entries: usize, body_bytes: usize) {
        let per_entry = self.base_url.len() + ENTRY_OVERHEAD;
        self.out.reserve(body_bytes + entries * per_entry);
    }

    pub fn push(&mut self, record: &ResourceRecord, mode: SearchMode) {
        if self.entries > 0 {
            self.out.push(',');
        }
        self.entries += 1;
        self.out.push_str(r#"{"fullUrl":"#);
        let full_url = format!("{}/{}/{}", self.base_url, record.resource_type, record.id);
        push_json_string(&mut self.out, &full_url);
        self.out.push_str(r#","resource":"#);
        self.out.push_str(&record.body);
        self.out.push_str(r#","search":{"mode":""#);
        self.out.push_str(mode.as_str());
        self.out.push_str(r#""}}"#);
    }

    pub fn finish(mut self) -> String {
        if self.entries == 0 {
            // FHIR forbids empty arrays: drop `"entry":[`.
            let cut = self.out.len() - r#","entry":["#.len();
            self.out.truncate(cut);
            self.out.push('}');
        } else {
            self.out.push_str("]}");
        }
        self.out
    }
}

fn push_json_string(out: &mut String, value: &str) {
    // serde_json's string escaping cannot fail for a &str.
    out.push_str(&serde_json::Value::from(value).to_string());
}

#[cfg(test)]
mod tests {
    use super::*;
    use fhir::{Instant, ResourceType};
    use std::sync::Arc;

    fn record(id: &str) -> ResourceRecord {
        ResourceRecord {
            resource_type: ResourceType::Patient,
            id: id.into(),
            version_id: 1,
            last_updated: Instant::parse("2026-01-01T00:00:00Z").unwrap(),
            deleted: false,
            body: Arc::from(format!(r#"{{"resourceType":"Patient","id":"{id}"}}"#)),
            index: Default::default(),
        }
    }

    #[test]
    fn writes_a_valid_searchset_with_links_and_modes() {
        let mut writer = SearchsetWriter::new(
            "http://x",
            "http://x/Patient?_id=a",
            Some("http://x/next\"q"),
            None,
        );
        writer.push(&record("a"), SearchMode::Match);
        writer.push(&record("b"), SearchMode::Include);
        let bundle: serde_json::Value = serde_json::from_str(&writer.finish()).unwrap();
        assert_eq!(bundle["type"], "searchset");
        assert_eq!(bundle["link"][1]["url"], "http://x/next\"q");
        assert_eq!(bundle["entry"][0]["fullUrl"], "http://x/Patient/a");
        assert_eq!(bundle["entry"][1]["search"]["mode"], "include");
        assert_eq!(bundle["entry"][1]["resource"]["id"], "b");
    }

    #[test]
    fn an_empty_result_has_no_entry_array() {
        let writer = SearchsetWriter::new("http://x", "http://x/Patient", None, Some(0));
        let bundle: serde_json::Value = serde_json::from_str(&writer.finish()).unwrap();
        assert_eq!(bundle["total"], 0);
        assert!(bundle.get("entry").is_none());
    }
}
