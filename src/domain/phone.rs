//! Phone numbers in E.164, read with libphonenumber's metadata (the `phonenumber` crate).
//! Local forms are read in the company's country: `0754123456` is +255754123456 for a TZ company
//! and +254754123456 for a KE one (PROTOCOLS.md section 6); we never guess.

use phonenumber::metadata::DATABASE;
use phonenumber::{Mode, Type};
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
        let (number, e164) = parse(input, country)?;
        let home = matches!(number.code().value(), 255 | 254);
        let kind = number.number_type(&DATABASE);
        if home && !matches!(kind, Type::Mobile | Type::FixedLineOrMobile) {
            return Err(PhoneError::NotMobile(e164));
        }
        Ok(E164(e164))
    }

    /// A mobile number of `country` itself (M-Pesa pays only from a local wallet).
    pub fn parse_mobile_in(input: &str, country: Country) -> Result<Self, PhoneError> {
        let (number, e164) = parse(input, country)?;
        let code = match country {
            Country::TZ => 255,
            Country::KE => 254,
        };
        if number.code().value() != code || number.number_type(&DATABASE) != Type::Mobile {
            return Err(PhoneError::NotMobile(e164));
        }
        Ok(E164(e164))
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

fn parse(input: &str, country: Country) -> Result<(phonenumber::PhoneNumber, String), PhoneError> {
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
    let e164 = number.format().mode(Mode::E164).to_string();
    if !number.is_valid() {
        return Err(PhoneError::Invalid(e164));
    }
    Ok((number, e164))
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
