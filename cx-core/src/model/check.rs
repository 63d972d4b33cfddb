//! Small validation helpers shared by the model's `validate` functions.
//!
//! A check returns a [`FieldError`] (the field and the reason); the caller that knows which item
//! is being validated turns it into [`Error::Validation`] with [`FieldError::at`]. Nothing here
//! allocates unless a check fails, so validating a million touchpoints costs only the checks.

use crate::error::Error;

/// A field that failed a check, not yet tied to the item that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldError {
    pub(crate) field: String,
    pub(crate) reason: String,
}

pub(crate) type Checked = Result<(), FieldError>;

impl FieldError {
    pub(crate) fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Nests this error under `prefix` (`survey` + `score` = `survey.score`).
    pub(crate) fn under(mut self, prefix: &str) -> Self {
        self.field = if self.field.is_empty() {
            prefix.to_owned()
        } else if self.field.starts_with('[') {
            format!("{prefix}{}", self.field)
        } else {
            format!("{prefix}.{}", self.field)
        };
        self
    }

    /// Ties this error to the item that holds the field.
    pub(crate) fn at(self, item: impl Into<String>) -> Error {
        Error::Validation {
            item: item.into(),
            field: self.field,
            reason: self.reason,
        }
    }
}

/// Longest id we accept, in bytes.
pub(crate) const MAX_ID_LEN: usize = 256;
/// Longest name (attribute, feature, kind...) we accept, in bytes.
pub(crate) const MAX_NAME_LEN: usize = 64;

/// An external id: non-empty, at most 256 bytes, no control characters.
pub(crate) fn id(field: &str, value: &str) -> Checked {
    if value.is_empty() {
        return Err(FieldError::new(field, "is empty"));
    }
    if value.len() > MAX_ID_LEN {
        return Err(FieldError::new(
            field,
            format!("is {} bytes long; the limit is {MAX_ID_LEN}", value.len()),
        ));
    }
    if has_control(value) {
        return Err(FieldError::new(field, "contains a control character"));
    }
    Ok(())
}

/// Whether `value` holds a control character ([`char::is_control`]). Ids are checked on every
/// ingested touchpoint and are nearly always ASCII: their bytes are tested without a branch
/// per byte, and only a string with a byte of DEL (0x7f) or above is decoded as characters.
fn has_control(value: &str) -> bool {
    let suspect = value
        .bytes()
        .fold(false, |seen, b| seen | !(0x20..0x7f).contains(&b));
    suspect && value.chars().any(char::is_control)
}

/// The bytes an identifier may hold after its first: ASCII letters, digits and `_` (and, for
/// a label, `-` and `.`), as a table indexed by byte. Non-ASCII bytes are never allowed.
#[expect(
    clippy::indexing_slicing,
    reason = "b runs below 256, the table's length"
)]
const fn word_bytes(label: bool) -> [bool; 256] {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'_' || (label && (c == b'-' || c == b'.'));
        b += 1;
    }
    table
}

static IDENTIFIER_BYTES: [bool; 256] = word_bytes(false);
static LABEL_BYTES: [bool; 256] = word_bytes(true);

/// Whether `value` starts with an ASCII letter or `_`, and every byte after is in `allowed`
/// (tested without a branch per byte: names are checked on every ingested touchpoint).
fn is_word(value: &str, allowed: &[bool; 256]) -> bool {
    let bytes = value.as_bytes();
    let starts_well = bytes
        .first()
        .is_some_and(|&c| c.is_ascii_alphabetic() || c == b'_');
    starts_well
        && bytes.iter().fold(true, |ok, &b| {
            ok & allowed.get(usize::from(b)).copied().unwrap_or(false)
        })
}

/// A name that rules refer to (`customer.plan`, `features.page_views_10m`): an ASCII letter or
/// `_`, then letters, digits or `_`; at most 64 bytes.
pub(crate) fn identifier(field: &str, value: &str) -> Checked {
    if !is_word(value, &IDENTIFIER_BYTES) || value.len() > MAX_NAME_LEN {
        return Err(FieldError::new(
            field,
            format!(
                "must be an identifier (a letter or `_`, then letters, digits or `_`, at most \
                 {MAX_NAME_LEN} bytes), got {value:?}"
            ),
        ));
    }
    Ok(())
}

/// A label such as a touchpoint kind or a category: like an identifier, but `-` and `.` are
/// allowed after the first character (`offer.shown`, `add-to-cart`).
pub(crate) fn label(field: &str, value: &str) -> Checked {
    if !is_word(value, &LABEL_BYTES) || value.len() > MAX_NAME_LEN {
        return Err(FieldError::new(
            field,
            format!(
                "must be a label (a letter or `_`, then letters, digits, `_`, `-` or `.`, at most \
                 {MAX_NAME_LEN} bytes), got {value:?}"
            ),
        ));
    }
    Ok(())
}

/// A finite number (not NaN, not infinite).
pub(crate) fn finite(field: &str, value: f64) -> Checked {
    if value.is_finite() {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            format!("must be a finite number, got {value}"),
        ))
    }
}

/// A finite number that is zero or more.
pub(crate) fn non_negative(field: &str, value: f64) -> Checked {
    finite(field, value)?;
    if value < 0.0 {
        return Err(FieldError::new(
            field,
            format!("must be zero or more, got {value}"),
        ));
    }
    Ok(())
}

/// Non-empty free text (a display name), at most 1,024 bytes.
pub(crate) fn text(field: &str, value: &str) -> Checked {
    if value.trim().is_empty() {
        return Err(FieldError::new(field, "is empty"));
    }
    if value.len() > 1024 {
        return Err(FieldError::new(field, "is longer than 1024 bytes"));
    }
    Ok(())
}

/// Reports the first id that occurs twice in `ids`.
pub(crate) fn unique<'a>(field: &str, ids: impl IntoIterator<Item = &'a str>) -> Checked {
    let mut seen = std::collections::HashSet::new();
    for id in ids {
        if !seen.insert(id) {
            return Err(FieldError::new(field, format!("has {id:?} twice")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        assert!(identifier("f", "data_cap_gb").is_ok());
        assert!(identifier("f", "_x1").is_ok());
        for bad in ["", "1abc", "a-b", "a b", "é"] {
            assert!(identifier("f", bad).is_err(), "{bad:?} accepted");
        }
        assert!(identifier("f", &"a".repeat(65)).is_err());
    }

    #[test]
    fn labels_allow_dots_and_dashes_after_the_first_character() {
        assert!(label("f", "offer.shown").is_ok());
        assert!(label("f", "add-to-cart").is_ok());
        assert!(label("f", "-x").is_err());
    }

    #[test]
    fn ids_reject_empty_long_and_control_characters() {
        assert!(id("f", "c-1@example").is_ok());
        assert!(id("f", "").is_err());
        assert!(id("f", "a\nb").is_err());
        assert!(id("f", &"x".repeat(257)).is_err());
    }

    proptest::proptest! {
        /// The byte-table checks say what the character-by-character definitions say, on
        /// strings mixing ASCII, control characters (C0, DEL, C1) and other Unicode.
        #[test]
        fn fast_checks_agree_with_their_definitions(
            value in "[a-zA-Z0-9_.\\-]{0,3}[\\x00-\\x1f\\x7f\\u{80}-\\u{a0}é€ a-z_0-9.\\-]{0,6}",
        ) {
            let defined_id = value.chars().any(char::is_control);
            proptest::prop_assert_eq!(has_control(&value), defined_id);
            let mut chars = value.chars();
            let starts = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
            let rest: Vec<char> = chars.collect();
            let ident = starts && rest.iter().all(|c| c.is_ascii_alphanumeric() || *c == '_');
            let label = starts
                && rest.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            proptest::prop_assert_eq!(identifier("f", &value).is_ok(), ident);
            proptest::prop_assert_eq!(super::label("f", &value).is_ok(), label);
        }
    }

    #[test]
    fn numbers_must_be_finite() {
        assert!(finite("f", 1.5).is_ok());
        assert!(finite("f", f64::NAN).is_err());
        assert!(finite("f", f64::INFINITY).is_err());
        assert!(non_negative("f", -0.5).is_err());
    }

    #[test]
    fn nested_fields_read_as_paths() {
        let e = FieldError::new("score", "bad").under("survey");
        assert_eq!(e.field, "survey.score");
        let e = FieldError::new("[2]", "bad").under("tags");
        assert_eq!(e.field, "tags[2]");
    }
}
