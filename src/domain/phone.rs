//! Phone numbers in E.164, read with libphonenumber's metadata (the `phonenumber` crate).
//! Local forms are read in the company's country: `0754123456` is +255754123456 for a TZ company
//! and +254754123456 for a KE one (PROTOCOLS.md section 6); we never guess.
//!
//! Which numbers of the home markets are mobile is ours to keep current (`HOME_MOBILE`): the
//! crate's newest release embeds older metadata that refuses numbers in service today.

use std::sync::LazyLock;

use phonenumber::Mode;
use regex::Regex;
use serde::Serialize;

use super::Country;

/// A valid number in E.164 form (`+255754123456`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, example = "+255754123456")]
pub struct E164(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("the number is empty")]
    Empty,
    #[error("{0:?} is not a phone number")]
    Unreadable(String),
    #[error("{0} is not a valid number")]
    Invalid(String),
    #[error("{0} is not a mobile number")]
    NotMobile(String),
}

impl E164 {
    /// A number that can receive SMS: valid, and for the home markets (TZ, KE) a mobile number
    /// (Twilio refuses landlines with 21635). Local forms are read in `country`.
    pub fn parse_sms(input: &str, country: Country) -> Result<Self, PhoneError> {
        let read = parse(input, country)?;
        match read.kind {
            Kind::Mobile | Kind::Other => Ok(E164(read.e164)),
            Kind::HomeNotMobile => Err(PhoneError::NotMobile(read.e164)),
        }
    }

    /// A mobile number of `country` itself (M-Pesa pays only from a local wallet).
    pub fn parse_mobile_in(input: &str, country: Country) -> Result<Self, PhoneError> {
        let read = parse(input, country)?;
        if read.code != country_code(country) || read.kind != Kind::Mobile {
            return Err(PhoneError::NotMobile(read.e164));
        }
        Ok(E164(read.e164))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Without the `+`, as Daraja wants it (`255754123456`).
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }
}

/// A number read back from the database, which CHECKs the E.164 shape when it is written: a
/// value of another shape is an error, never trusted.
impl TryFrom<String> for E164 {
    type Error = PhoneError;
    fn try_from(s: String) -> Result<Self, PhoneError> {
        let digits = s.strip_prefix('+').unwrap_or_default();
        let shaped = (7..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if shaped {
            Ok(E164(s))
        } else {
            Err(PhoneError::Invalid(s))
        }
    }
}

impl std::fmt::Display for E164 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The mobile ranges of the home markets, by country calling code: their national significant
/// numbers, as libphonenumber 9.0.43 has them (PROTOCOLS.md section 6). The `phonenumber`
/// crate's newest release (0.3.10) embeds 9.0.33, where Tanzania's mobile numbers are
/// `(?:6[1-35-9]|7[013-9])\d{7}` (no 60, 72) and Kenya's lack 13[5-9], 146 and 18: numbers in
/// service there would be refused. For these two countries this table decides; when the crate
/// carries newer metadata, compare and drop it.
static HOME_MOBILE: LazyLock<[(u64, Regex); 2]> = LazyLock::new(|| {
    let nsn = |pattern: &str| Regex::new(&format!("^(?:{pattern})$")).expect("a valid pattern");
    [
        (255, nsn(r"(?:6[0-35-9]|7\d)\d{7}")),
        (
            254,
            nsn(r"(?:1(?:0[0-8]|[18]\d|2[014]|3[05-9]|4[0-6])|7\d\d)\d{6}"),
        ),
    ]
});

fn country_code(country: Country) -> u64 {
    match country {
        Country::TZ => 255,
        Country::KE => 254,
    }
}

/// What a number is, for sending to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A mobile number of a home market.
    Mobile,
    /// A valid number of a home market that is not mobile (a landline, a premium number).
    HomeNotMobile,
    /// A valid number elsewhere (the crate's metadata decides; Twilio's test numbers among them).
    Other,
}

/// A valid number: its calling code, E.164 form and kind.
struct Read {
    code: u64,
    e164: String,
    kind: Kind,
}

fn parse(input: &str, country: Country) -> Result<Read, PhoneError> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(PhoneError::Empty);
    }
    let region = match country {
        Country::TZ => phonenumber::country::Id::TZ,
        Country::KE => phonenumber::country::Id::KE,
    };
    let number = phonenumber::parse(Some(region), trimmed)
        .map_err(|_| PhoneError::Unreadable(trimmed.to_string()))?;
    let code = u64::from(number.code().value());
    let e164 = number.format().mode(Mode::E164).to_string();
    let home_mobile = HOME_MOBILE
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, mobile)| {
            let nsn = e164.strip_prefix(&format!("+{code}")).unwrap_or_default();
            mobile.is_match(nsn)
        });
    let kind = match home_mobile {
        Some(true) => Kind::Mobile,
        // The crate's metadata still says which other numbers exist (landlines and the like).
        Some(false) if number.is_valid() => Kind::HomeNotMobile,
        None if number.is_valid() => Kind::Other,
        _ => return Err(PhoneError::Invalid(e164)),
    };
    Ok(Read { code, e164, kind })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_number_of_another_shape_is_refused_not_trusted() {
        let ok = E164::try_from("+255754123456".to_string()).unwrap();
        assert_eq!(ok.as_str(), "+255754123456");
        for bad in [
            "255754123456",
            "+0754123456",
            "+2557541234a6",
            "+",
            "+123456",
            "",
        ] {
            assert!(E164::try_from(bad.to_string()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn local_forms_are_read_in_the_companys_country() {
        assert_eq!(
            E164::parse_sms("0754123456", Country::TZ).unwrap().as_str(),
            "+255754123456"
        );
        assert_eq!(
            E164::parse_sms("0754 123 456", Country::TZ)
                .unwrap()
                .as_str(),
            "+255754123456"
        );
        assert_eq!(
            E164::parse_sms("0712345678", Country::KE).unwrap().as_str(),
            "+254712345678"
        );
        assert_eq!(
            E164::parse_sms("0712345678", Country::TZ).unwrap().as_str(),
            "+255712345678"
        );
        assert_eq!(
            E164::parse_sms("+255754123456", Country::KE)
                .unwrap()
                .as_str(),
            "+255754123456"
        );
        assert_eq!(
            E164::parse_sms("0110123456", Country::KE).unwrap().as_str(),
            "+254110123456"
        );
    }

    #[test]
    fn invalid_landline_and_garbage_are_refused() {
        assert_eq!(E164::parse_sms("", Country::TZ), Err(PhoneError::Empty));
        assert!(matches!(
            E164::parse_sms("hello", Country::TZ),
            Err(PhoneError::Unreadable(_))
        ));
        assert!(matches!(
            E164::parse_sms("0110123456", Country::TZ),
            Err(PhoneError::Invalid(_) | PhoneError::NotMobile(_))
        ));
        assert!(matches!(
            E164::parse_sms("075412", Country::TZ),
            Err(PhoneError::Invalid(_))
        ));
        // 64 is not a mobile range in Tanzania; 22 is Dar es Salaam's fixed network.
        assert!(matches!(
            E164::parse_sms("0222123456", Country::TZ),
            Err(PhoneError::NotMobile(_))
        ));
    }

    /// Each edge of the home markets' mobile ranges in libphonenumber 9.0.43 (`HOME_MOBILE`),
    /// with a number just outside it.
    #[test]
    fn home_mobile_ranges_are_those_of_current_numbering_data() {
        let mobile = [
            // Tanzania: 60-63, 65-69, 70-79 (60 and 72 are missing from the crate's 9.0.33).
            "+255601234567",
            "+255612345678",
            "+255631234567",
            "+255651234567",
            "+255691234567",
            "+255701234567",
            "+255721234567",
            "+255791234567",
            // Kenya: 100-108, 11x, 120/121/124, 130, 135-139, 140-146, 18x, 7xx.
            "+254100123456",
            "+254108123456",
            "+254110123456",
            "+254119123456",
            "+254120123456",
            "+254124123456",
            "+254130123456",
            "+254135123456",
            "+254139123456",
            "+254140123456",
            "+254146123456",
            "+254180123456",
            "+254189123456",
            "+254700123456",
            "+254799123456",
        ];
        for n in mobile {
            assert_eq!(
                E164::parse_sms(n, Country::TZ).map(|e| e.0),
                Ok(n.into()),
                "{n}"
            );
            let local = E164::parse_mobile_in(
                n,
                if n.starts_with("+255") {
                    Country::TZ
                } else {
                    Country::KE
                },
            );
            assert!(local.is_ok(), "{n}: {local:?}");
        }
        assert_eq!(
            E164::parse_sms("0721234567", Country::TZ).unwrap().as_str(),
            "+255721234567"
        );
        assert_eq!(
            E164::parse_sms("0601234567", Country::TZ).unwrap().as_str(),
            "+255601234567"
        );
        let not_mobile = [
            "+255641234567", // 64 is not mobile
            "+255801234567",
            "+255222123456", // Dar es Salaam's fixed network
            "+25572123456",  // one digit short
            "+2557212345678",
            "+254109123456",
            "+254122123456",
            "+254131123456",
            "+254147123456",
            "+254150123456",
            "+254201234567", // Nairobi's fixed network
            "+25470012345",
        ];
        for n in not_mobile {
            let read = E164::parse_sms(n, Country::TZ);
            assert!(
                matches!(read, Err(PhoneError::Invalid(_) | PhoneError::NotMobile(_))),
                "{n}: {read:?}"
            );
        }
        assert_eq!(
            E164::parse_sms("+255222123456", Country::TZ),
            Err(PhoneError::NotMobile("+255222123456".into()))
        );
    }

    #[test]
    fn mpesa_needs_a_local_mobile() {
        assert_eq!(
            E164::parse_mobile_in("0712123456", Country::KE)
                .unwrap()
                .digits(),
            "254712123456"
        );
        assert!(E164::parse_mobile_in("+255754123456", Country::KE).is_err());
    }

    #[test]
    fn twilio_magic_test_numbers_are_valid_numbers() {
        for n in [
            "+15005550001",
            "+15005550002",
            "+15005550003",
            "+15005550004",
            "+15005550009",
            "+15005550006",
        ] {
            assert!(E164::parse_sms(n, Country::TZ).is_ok(), "{n}");
        }
    }
}
