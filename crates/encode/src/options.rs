//! Encoder options and their text forms.

use std::fmt;
use std::str::FromStr;

/// The message layout (Neuron's "upload format").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// values-format (Neuron code 0): `"values"`, `"errors"` and `"metas"` objects keyed
    /// by tag name.
    #[default]
    Values,
    /// tags-format (Neuron code 1): a `"tags"` array with one object per tag.
    Tags,
}

impl Format {
    /// Neuron's numeric code: 0 for values-format, 1 for tags-format.
    pub fn code(self) -> u8 {
        match self {
            Format::Values => 0,
            Format::Tags => 1,
        }
    }

    /// The configuration name: `"values"` or `"tags"`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Values => "values",
            Format::Tags => "tags",
        }
    }
}

/// How the JSON text is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Style {
    /// Byte-identical to Neuron 2.10.2+ (jansson layout, `%.15g` floats, Neuron's
    /// rounding heuristic).
    #[default]
    Neuron,
    /// No insignificant whitespace, shortest round-trip floats.
    Compact,
}

impl Style {
    /// The configuration name: `"neuron"` or `"compact"`.
    pub fn name(self) -> &'static str {
        match self {
            Style::Neuron => "neuron",
            Style::Compact => "compact",
        }
    }
}

/// What the encoder produces: the message layout, the text style, and whether error
/// tags are sent.
///
/// `#[non_exhaustive]` so that a new option is not a breaking change: start from
/// [`Default`] (what Neuron does) and change what differs with the setters.
///
/// ```
/// use tagwire_encode::{EncodeOptions, Format, Style};
/// let options = EncodeOptions::default()
///     .with_format(Format::Tags)
///     .with_style(Style::Compact)
///     .with_upload_err(false);
/// assert_eq!(options.format, Format::Tags);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct EncodeOptions {
    /// values-format or tags-format.
    pub format: Format,
    /// neuron or compact text.
    pub style: Style,
    /// Send error tags (Neuron's `upload_err`). When false, error tags (including the
    /// 3008s made from non-finite floats) are left out, and a snapshot with nothing
    /// left is not sent at all.
    pub upload_err: bool,
}

impl Default for EncodeOptions {
    /// values-format, neuron style, errors uploaded: what Neuron does by default.
    fn default() -> Self {
        Self::new()
    }
}

impl EncodeOptions {
    /// The defaults (values-format, neuron style, errors uploaded), usable in `const`
    /// items.
    pub const fn new() -> Self {
        EncodeOptions {
            format: Format::Values,
            style: Style::Neuron,
            upload_err: true,
        }
    }

    /// The same options with `format`.
    #[must_use]
    pub const fn with_format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// The same options with `style`.
    #[must_use]
    pub const fn with_style(mut self, style: Style) -> Self {
        self.style = style;
        self
    }

    /// The same options with `upload_err`.
    #[must_use]
    pub const fn with_upload_err(mut self, upload_err: bool) -> Self {
        self.upload_err = upload_err;
        self
    }
}

/// A `format` or `style` text that is not one of the accepted names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseOptionError {
    option: &'static str,
    expected: &'static str,
    got: String,
}

impl fmt::Display for ParseOptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown {} {:?}: use {}",
            self.option, self.got, self.expected
        )
    }
}

impl std::error::Error for ParseOptionError {}

impl FromStr for Format {
    type Err = ParseOptionError;

    /// `"values"` or `"tags"` (ASCII case ignored), or Neuron's codes `"0"` / `"1"`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("values") || t == "0" {
            Ok(Format::Values)
        } else if t.eq_ignore_ascii_case("tags") || t == "1" {
            Ok(Format::Tags)
        } else {
            Err(ParseOptionError {
                option: "format",
                expected: "\"values\" or \"tags\" (Neuron's 0 or 1)",
                got: s.chars().take(40).collect(),
            })
        }
    }
}

impl FromStr for Style {
    type Err = ParseOptionError;

    /// `"neuron"` or `"compact"` (ASCII case ignored).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("neuron") {
            Ok(Style::Neuron)
        } else if t.eq_ignore_ascii_case("compact") {
            Ok(Style::Compact)
        } else {
            Err(ParseOptionError {
                option: "style",
                expected: "\"neuron\" or \"compact\"",
                got: s.chars().take(40).collect(),
            })
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Style {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names_and_codes() {
        assert_eq!("values".parse::<Format>(), Ok(Format::Values));
        assert_eq!("0".parse::<Format>(), Ok(Format::Values));
        assert_eq!("TAGS".parse::<Format>(), Ok(Format::Tags));
        assert_eq!("1".parse::<Format>(), Ok(Format::Tags));
        assert_eq!("compact".parse::<Style>(), Ok(Style::Compact));
        assert_eq!("Neuron".parse::<Style>(), Ok(Style::Neuron));
        let e = "2".parse::<Format>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown format \"2\": use \"values\" or \"tags\" (Neuron's 0 or 1)"
        );
        let e = "pretty".parse::<Style>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown style \"pretty\": use \"neuron\" or \"compact\""
        );
        for f in [Format::Values, Format::Tags] {
            assert_eq!(f.to_string().parse::<Format>(), Ok(f));
            assert_eq!(f.code().to_string().parse::<Format>(), Ok(f));
        }
        for s in [Style::Neuron, Style::Compact] {
            assert_eq!(s.to_string().parse::<Style>(), Ok(s));
        }
    }
}
