//! A small RFC 4180 reader: comma-separated fields, optionally double-quoted, `""`
//! inside quotes for a quote. One record per line (a quoted field may not hold a
//! line break: roster exports do not need one, and a stray quote then shows up as a
//! plain error on its own line instead of swallowing the rest of the file).

/// Splits one line into fields, or says why it cannot.
pub fn fields(line: &str) -> Result<Vec<String>, String> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut out = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    field.push('"');
                    chars.next();
                }
                '"' => {
                    quoted = false;
                    if chars.peek().is_some_and(|n| *n != ',') {
                        return Err(
                            "a closing quote must be followed by a comma or the end of the line"
                                .into(),
                        );
                    }
                }
                other => field.push(other),
            }
            continue;
        }
        match c {
            '"' if at_start => {
                quoted = true;
                at_start = false;
            }
            ',' => {
                out.push(std::mem::take(&mut field));
                at_start = true;
            }
            other => {
                field.push(other);
                at_start = false;
            }
        }
    }
    if quoted {
        return Err("a quoted field is not closed on its line".into());
    }
    out.push(field);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_plain_and_quoted_fields() {
        assert_eq!(fields("a,b,,c").unwrap(), ["a", "b", "", "c"]);
        assert_eq!(
            fields("\"Smith, Jr\",\"say \"\"hi\"\"\"\r").unwrap(),
            ["Smith, Jr", "say \"hi\""]
        );
        assert!(fields("\"open,b").is_err());
        assert!(fields("\"a\"b,c").is_err());
    }
}
