//! SMS bodies and how many segments they cost (PROTOCOLS.md section 6): GSM-7 when every
//! character is in the GSM 03.38 basic or extension table (extension characters cost two
//! septets), otherwise UCS-2 for the whole message; 160/153 septets or 70/67 UTF-16 units per
//! segment, and an escape pair or a surrogate pair is never split across segments.

use serde::Serialize;

/// Twilio refuses longer bodies (21617).
pub const MAX_BODY_CHARS: usize = 1600;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub enum Encoding {
    #[serde(rename = "GSM-7")]
    Gsm7,
    #[serde(rename = "UCS-2")]
    Ucs2,
}

impl Encoding {
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Gsm7 => "GSM-7",
            Encoding::Ucs2 => "UCS-2",
        }
    }
}

/// A body that Twilio will take: not blank, at most 1,600 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsBody(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the body is empty")]
    Empty,
    #[error("the body has {0} characters; at most 1600 are allowed")]
    TooLong(usize),
}

impl SmsBody {
    pub fn parse(body: &str) -> Result<Self, BodyError> {
        if body.trim().is_empty() {
            return Err(BodyError::Empty);
        }
        let chars = body.chars().count();
        if chars > MAX_BODY_CHARS {
            return Err(BodyError::TooLong(chars));
        }
        Ok(SmsBody(body.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn segments(&self) -> Segments {
        Segments::count(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Segments {
    pub encoding: Encoding,
    pub count: u32,
}

const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM_EXTENSION: &str = "\u{c}^{}\\[~]|€";

/// Septets a character costs in GSM-7, or `None` if it is not in GSM-7.
fn gsm_septets(c: char) -> Option<u32> {
    if GSM_BASIC.contains(c) {
        Some(1)
    } else if GSM_EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

impl Segments {
    pub fn count(body: &str) -> Self {
        let septets: Option<Vec<u32>> = body.chars().map(gsm_septets).collect();
        match septets {
            Some(units) => Segments {
                encoding: Encoding::Gsm7,
                count: pack(&units, 160, 153),
            },
            None => {
                let units: Vec<u32> = body.chars().map(|c| c.len_utf16() as u32).collect();
                Segments {
                    encoding: Encoding::Ucs2,
                    count: pack(&units, 70, 67),
                }
            }
        }
    }
}

/// Segments needed for `units` (each indivisible) at `single` per message, or `multi` per part.
fn pack(units: &[u32], single: u32, multi: u32) -> u32 {
    let total: u32 = units.iter().sum();
    if total <= single {
        return 1;
    }
    let (mut segments, mut used) = (1, 0);
    for &u in units {
        if used + u > multi {
            segments += 1;
            used = 0;
        }
        used += u;
    }
    segments
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(body: &str) -> (Encoding, u32) {
        let s = Segments::count(body);
        (s.encoding, s.count)
    }

    #[test]
    fn the_calculator_vectors() {
        let digits = |n| "1".repeat(n);
        assert_eq!(seg(&digits(160)), (Encoding::Gsm7, 1));
        assert_eq!(seg(&digits(161)), (Encoding::Gsm7, 2));
        assert_eq!(seg(&digits(306)), (Encoding::Gsm7, 2));
        assert_eq!(seg(&digits(307)), (Encoding::Gsm7, 3));
        assert_eq!(seg(&format!("😜{}", digits(68))), (Encoding::Ucs2, 1));
        assert_eq!(seg(&format!("😜{}", digits(69))), (Encoding::Ucs2, 2));
        assert_eq!(seg(&format!("😜{}", digits(133))), (Encoding::Ucs2, 3));
        for esc in GSM_EXTENSION.chars() {
            assert_eq!(
                seg(&format!("{esc}{}", digits(158))),
                (Encoding::Gsm7, 1),
                "{esc:?}"
            );
            assert_eq!(
                seg(&format!("{esc}{}", digits(159))),
                (Encoding::Gsm7, 2),
                "{esc:?}"
            );
        }
        assert_eq!(seg(&"ç".repeat(70)), (Encoding::Ucs2, 1));
        assert_eq!(seg(&"ç".repeat(71)), (Encoding::Ucs2, 2));
    }

    #[test]
    fn the_gsm_basic_table_has_its_127_characters_and_smart_punctuation_is_not_gsm() {
        assert_eq!(GSM_BASIC.chars().count(), 127);
        for c in ['`', '’', '“', '”', '–'] {
            assert_eq!(seg(&format!("Habari{c}")).0, Encoding::Ucs2, "{c}");
        }
    }

    #[test]
    fn an_escape_pair_is_never_split() {
        // 152 digits then '€' (2 septets) does not fit the first part's 153: it moves whole.
        let body = format!("{}€{}", "1".repeat(152), "1".repeat(10));
        assert_eq!(seg(&body), (Encoding::Gsm7, 2));
        let body = format!("{}€{}", "1".repeat(152), "1".repeat(152));
        assert_eq!(seg(&body), (Encoding::Gsm7, 3));
    }

    #[test]
    fn swahili_stays_gsm() {
        let sw = "Habari Juma, deni lako la TZS 20,000 kwa ankara INV-1001 limepita tarehe. Tafadhali lipa leo. Asante!";
        assert_eq!(seg(sw), (Encoding::Gsm7, 1));
    }

    #[test]
    fn bodies_are_not_blank_and_not_too_long() {
        assert_eq!(SmsBody::parse("  \n"), Err(BodyError::Empty));
        assert_eq!(
            SmsBody::parse(&"a".repeat(1601)),
            Err(BodyError::TooLong(1601))
        );
        assert!(SmsBody::parse(&"ü".repeat(1600)).is_ok());
    }
}
