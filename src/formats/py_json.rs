//! JSON written as Python's `json.dumps` writes it, for chat templates'
//! `tojson` filter: Hugging Face's filter is `json.dumps(x, ensure_ascii=False,
//! indent=None)`, so `", "` and `": "` separators on one line, or `","` and
//! newlines with `indent`, keys in insertion order, no HTML escaping, and
//! floats as Python's `repr` spells them (`1.0`, `1e+20`).

use minijinja::value::{Value, ValueKind};
use minijinja::{Error, ErrorKind};
use std::fmt::Write;

/// How to lay out the JSON.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Layout {
    /// Spaces per nesting level; `None` writes everything on one line.
    pub indent: Option<usize>,
    /// Escape every character outside printable ASCII as `\uXXXX`.
    pub ensure_ascii: bool,
    /// Write map keys in sorted order instead of insertion order.
    pub sort_keys: bool,
}

/// `value` as JSON text.
pub(crate) fn dumps(value: &Value, layout: Layout) -> Result<String, Error> {
    let mut out = String::new();
    write_value(&mut out, value, layout, 0)?;
    Ok(out)
}

fn write_value(out: &mut String, value: &Value, layout: Layout, depth: usize) -> Result<(), Error> {
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if value.is_true() { "true" } else { "false" }),
        ValueKind::Number if value.is_integer() => {
            let _ = write!(out, "{value}");
        }
        ValueKind::Number => {
            let f = f64::try_from(value.clone())?;
            out.push_str(&python_float(f));
        }
        ValueKind::String => write_string(out, value.as_str().unwrap_or_default(), layout),
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = value.try_iter()?.collect();
            write_items(out, items.len(), layout, depth, ('[', ']'), |out, i| {
                write_value(out, &items[i], layout, depth + 1)
            })?;
        }
        ValueKind::Map => {
            let mut keys: Vec<Value> = value.try_iter()?.collect();
            if layout.sort_keys {
                keys.sort();
            }
            write_items(out, keys.len(), layout, depth, ('{', '}'), |out, i| {
                let key = &keys[i];
                match key.as_str() {
                    Some(s) => write_string(out, s, layout),
                    // Python turns non-string keys into strings.
                    None => write_string(out, &key.to_string(), layout),
                }
                out.push_str(": ");
                write_value(out, &value.get_item(key)?, layout, depth + 1)
            })?;
        }
        other => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("tojson cannot write a value of type {other}"),
            ))
        }
    }
    Ok(())
}

/// Writes `count` items between `brackets`, separated as `json.dumps` does.
fn write_items(
    out: &mut String,
    count: usize,
    layout: Layout,
    depth: usize,
    brackets: (char, char),
    mut item: impl FnMut(&mut String, usize) -> Result<(), Error>,
) -> Result<(), Error> {
    out.push(brackets.0);
    if count == 0 {
        out.push(brackets.1);
        return Ok(());
    }
    for i in 0..count {
        match layout.indent {
            Some(n) => {
                if i > 0 {
                    out.push(',');
                }
                out.push('\n');
                out.extend(std::iter::repeat_n(' ', n * (depth + 1)));
            }
            None if i > 0 => out.push_str(", "),
            None => {}
        }
        item(out, i)?;
    }
    if let Some(n) = layout.indent {
        out.push('\n');
        out.extend(std::iter::repeat_n(' ', n * depth));
    }
    out.push(brackets.1);
    Ok(())
}

fn write_string(out: &mut String, s: &str, layout: Layout) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (layout.ensure_ascii && !(' '..='~').contains(&c)) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A float as Python's `repr` writes it: the shortest digits that round-trip,
/// positional for exponents in -4..16, else `d.ddde+XX`.
fn python_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let scientific = format!("{f:e}");
    let (mantissa, exponent) = scientific
        .split_once('e')
        .map(|(m, e)| (m, e.parse::<i32>().unwrap_or(0)))
        .unwrap_or((scientific.as_str(), 0));
    if (-4..16).contains(&exponent) {
        let positional = format!("{f}");
        if positional.contains('.') {
            positional
        } else {
            positional + ".0"
        }
    } else {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    #[test]
    fn floats_as_python_repr() {
        for (f, s) in [
            (1.0, "1.0"),
            (1.5, "1.5"),
            (0.1, "0.1"),
            (-2.0, "-2.0"),
            (1e20, "1e+20"),
            (1.5e-7, "1.5e-07"),
            (0.0001, "0.0001"),
            (123456789012345.0, "123456789012345.0"),
            (1e16, "1e+16"),
        ] {
            assert_eq!(python_float(f), s, "{f}");
        }
    }

    #[test]
    fn layouts() {
        let v = context! {
            b => vec![Value::from(1), Value::from(2.5), Value::from(())],
            a => "é\n\"x\"",
            c => context! {},
        };
        assert_eq!(
            dumps(&v, Layout::default()).unwrap(),
            r#"{"b": [1, 2.5, null], "a": "é\n\"x\"", "c": {}}"#
        );
        let sorted = Layout {
            sort_keys: true,
            ..Layout::default()
        };
        assert!(dumps(&v, sorted).unwrap().starts_with(r#"{"a": "#));
        let ascii = Layout {
            ensure_ascii: true,
            ..Layout::default()
        };
        assert_eq!(
            dumps(&Value::from("é🙂"), ascii).unwrap(),
            r#""\u00e9\ud83d\ude42""#
        );
        let indented = Layout {
            indent: Some(2),
            ..Layout::default()
        };
        assert_eq!(
            dumps(
                &Value::from(vec![
                    Value::from(1),
                    Value::from(Vec::<Value>::new()),
                    context! { k => true }
                ]),
                indented
            )
            .unwrap(),
            "[\n  1,\n  [],\n  {\n    \"k\": true\n  }\n]"
        );
    }
}
