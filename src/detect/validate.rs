//! Validators: checks a regex cannot express (check digits, reserved ranges, layouts).
//!
//! Every validator takes the matched value as written (dashes, spaces and all) and
//! returns whether it is a plausible identifier of its kind. Rules name them by
//! [`Validator`]'s spelling in YAML.

use serde::Deserialize;

/// A named validator a rule may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Validator {
    /// US Social Security number: reserved areas, groups and serials rejected.
    Ssn,
    /// US National Provider Identifier: Luhn over `80840` + the ten digits.
    Npi,
    /// DEA registration number: registrant letter and check digit.
    Dea,
    /// Medicare Beneficiary Identifier: the CMS character layout.
    Mbi,
    /// Luhn check digit only.
    Luhn,
    /// Payment card: Luhn plus a known issuer prefix and length.
    CreditCard,
    /// ICD-10-CM code shape.
    Icd10,
    /// National Drug Code shapes: 4-4-2, 5-3-2, 5-4-1 and 11 digits (5-4-2).
    Ndc,
    /// A date that is a plausible birth date (1900..=2030, real month and day).
    Date,
    /// A phone number with a valid NANP area code and exchange.
    Phone,
    /// A JSON Web Token: three dot-separated base64url parts, the first decoding to a JSON header.
    Jwt,
    /// HTTP Basic credentials: base64 of `user:password`.
    BasicAuth,
    /// A secret value that is not a placeholder (`********`, `${VAR}`, `<redacted>`, `null` ...).
    Secret,
}

impl Validator {
    /// Run the validator on a matched value.
    pub fn check(self, value: &str) -> bool {
        match self {
            Validator::Ssn => ssn(value),
            Validator::Npi => npi(value),
            Validator::Dea => dea(value),
            Validator::Mbi => mbi(value),
            Validator::Luhn => {
                let d = digits(value);
                d.len() >= 2 && luhn(&d)
            }
            Validator::CreditCard => credit_card(value),
            Validator::Icd10 => icd10(value),
            Validator::Ndc => ndc(value),
            Validator::Date => date(value),
            Validator::Phone => phone(value),
            Validator::Jwt => jwt(value),
            Validator::BasicAuth => basic_auth(value),
            Validator::Secret => secret(value),
        }
    }
}

/// The ASCII digits of a value, in order.
pub fn digits(value: &str) -> Vec<u8> {
    value
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .collect()
}

/// Luhn (mod 10) check over digit values (0..=9), the last being the check digit.
pub fn luhn(d: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, &x) in d.iter().rev().enumerate() {
        let mut v = u32::from(x);
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

fn num(d: &[u8]) -> u32 {
    d.iter().fold(0u32, |a, &x| a * 10 + u32::from(x))
}

/// SSN: nine digits (dashes or spaces allowed), area not 000/666/900-999, group not
/// 00, serial not 0000, and not one of the numbers famously misused in advertising.
pub fn ssn(value: &str) -> bool {
    if !value
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b'-' || b == b' ')
    {
        return false;
    }
    let d = digits(value);
    if d.len() != 9 {
        return false;
    }
    let (area, group, serial) = (num(&d[..3]), num(&d[3..5]), num(&d[5..]));
    if area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0 {
        return false;
    }
    !matches!(num(&d), 78_051_120 | 219_099_999)
}

/// NPI: ten digits starting with 1 or 2 whose Luhn check over `80840` + NPI holds.
pub fn npi(value: &str) -> bool {
    if !value.bytes().all(|b| b.is_ascii_digit()) || value.len() != 10 {
        return false;
    }
    let d = digits(value);
    if d[0] != 1 && d[0] != 2 {
        return false;
    }
    let mut full = vec![8, 0, 8, 4, 0];
    full.extend_from_slice(&d);
    luhn(&full)
}

/// DEA number: registrant-type letter, a second letter (or 9), seven digits whose last
/// is the check digit: (d1+d3+d5) + 2*(d2+d4+d6), last digit.
pub fn dea(value: &str) -> bool {
    let b = value.as_bytes();
    if b.len() != 9 {
        return false;
    }
    let first = b[0].to_ascii_uppercase();
    if !b"ABCDEFGHJKLMPRSTUX".contains(&first) {
        return false;
    }
    if !(b[1].is_ascii_alphabetic() || b[1] == b'9') {
        return false;
    }
    if !b[2..].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let d: Vec<u32> = b[2..].iter().map(|x| u32::from(x - b'0')).collect();
    let sum = d[0] + d[2] + d[4] + 2 * (d[1] + d[3] + d[5]);
    sum % 10 == d[6]
}

/// MBI: 11 characters (dashes after the 4th and 7th allowed) in the CMS layout
/// `C A AN N A AN N A A N N`, letters excluding S, L, O, I, B and Z.
pub fn mbi(value: &str) -> bool {
    let b = value.as_bytes();
    let chars: Vec<u8> = match b.len() {
        11 => b.to_vec(),
        13 if b[4] == b'-' && b[8] == b'-' => b
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 4 && *i != 8)
            .map(|(_, c)| *c)
            .collect(),
        _ => return false,
    };
    let alpha = |c: u8| {
        let c = c.to_ascii_uppercase();
        c.is_ascii_uppercase() && !b"SLOIBZ".contains(&c)
    };
    let numeric = |c: u8| c.is_ascii_digit();
    let alnum = |c: u8| alpha(c) || numeric(c);
    (b'1'..=b'9').contains(&chars[0])
        && alpha(chars[1])
        && alnum(chars[2])
        && numeric(chars[3])
        && alpha(chars[4])
        && alnum(chars[5])
        && numeric(chars[6])
        && alpha(chars[7])
        && alpha(chars[8])
        && numeric(chars[9])
        && numeric(chars[10])
}

/// Payment card: 13-19 digits (spaces or dashes allowed), Luhn-valid, with a known
/// issuer prefix and a length that issuer uses.
pub fn credit_card(value: &str) -> bool {
    if !value
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b' ' || b == b'-')
    {
        return false;
    }
    let d = digits(value);
    let n = d.len();
    if !(13..=19).contains(&n) || !luhn(&d) {
        return false;
    }
    let p2 = num(&d[..2]);
    let p3 = num(&d[..3]);
    let p4 = num(&d[..4]);
    let p6 = num(&d[..6]);
    let visa = d[0] == 4 && matches!(n, 13 | 16 | 19);
    let mastercard = ((51..=55).contains(&p2) || (2221..=2720).contains(&p4)) && n == 16;
    let amex = (p2 == 34 || p2 == 37) && n == 15;
    let discover =
        (p4 == 6011 || (644..=649).contains(&p3) || p2 == 65 || (622_126..=622_925).contains(&p6))
            && (16..=19).contains(&n);
    let jcb = (3528..=3589).contains(&p4) && (16..=19).contains(&n);
    let diners =
        ((300..=305).contains(&p3) || p2 == 36 || p2 == 38 || p2 == 39) && (14..=19).contains(&n);
    visa || mastercard || amex || discover || jcb || diners
}

/// ICD-10-CM code shape: a letter, a digit, a digit or letter, then optionally a dot
/// and one to four digits or letters (`E11.9`, `S72.001A`, `C4A.0`, `Z00`).
pub fn icd10(value: &str) -> bool {
    let b = value.as_bytes();
    if b.len() < 3 || !b[0].is_ascii_uppercase() || !b[1].is_ascii_digit() {
        return false;
    }
    if !(b[2].is_ascii_digit() || b[2].is_ascii_uppercase()) {
        return false;
    }
    match &b[3..] {
        [] => true,
        [b'.', rest @ ..] => {
            (1..=4).contains(&rest.len())
                && rest
                    .iter()
                    .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
        }
        _ => false,
    }
}

/// NDC shapes: dashed 4-4-2, 5-3-2, 5-4-1 or 5-4-2, or 11 plain digits.
pub fn ndc(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    if !parts
        .iter()
        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    let lens: Vec<usize> = parts.iter().map(|p| p.len()).collect();
    matches!(
        lens.as_slice(),
        [4, 4, 2] | [5, 3, 2] | [5, 4, 1] | [5, 4, 2] | [11]
    )
}

/// A calendar date, as `YYYY-MM-DD`, `YYYYMMDD`, `MM/DD/YYYY` or `MM-DD-YYYY`, with a
/// year in 1900..=2030 and a day that exists in its month.
pub fn date(value: &str) -> bool {
    let b = value.as_bytes();
    let all_digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    let (y, m, d) = match b.len() {
        10 if (b[4] == b'-' || b[4] == b'/') && b[7] == b[4] => {
            if !all_digits(&b[..4]) || !all_digits(&b[5..7]) || !all_digits(&b[8..]) {
                return false;
            }
            (
                num(&digits(&value[..4])),
                num(&digits(&value[5..7])),
                num(&digits(&value[8..])),
            )
        }
        10 if (b[2] == b'/' || b[2] == b'-') && b[5] == b[2] => {
            if !all_digits(&b[..2]) || !all_digits(&b[3..5]) || !all_digits(&b[6..]) {
                return false;
            }
            (
                num(&digits(&value[6..])),
                num(&digits(&value[..2])),
                num(&digits(&value[3..5])),
            )
        }
        8 if all_digits(b) => (
            num(&digits(&value[..4])),
            num(&digits(&value[4..6])),
            num(&digits(&value[6..])),
        ),
        _ => return false,
    };
    if !(1900..=2030).contains(&y) || !(1..=12).contains(&m) || d == 0 {
        return false;
    }
    let leap = (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    let max = match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    d <= max
}

/// NANP phone: ten digits after an optional leading 1, area code and exchange not
/// starting with 0 or 1, area code not N11, and not the 555-01xx fiction block.
pub fn phone(value: &str) -> bool {
    let mut d = digits(value);
    if d.len() == 11 && d[0] == 1 {
        d.remove(0);
    }
    if d.len() != 10 || d[0] < 2 || d[3] < 2 {
        return false;
    }
    if d[1] == 1 && d[2] == 1 {
        return false;
    }
    !(num(&d[3..6]) == 555 && d[6] == 0 && d[7] == 1)
}

/// JWT: three base64url parts whose first decodes to a JSON object naming `alg`.
pub fn jwt(value: &str) -> bool {
    use base64::Engine as _;
    let mut parts = value.split('.');
    let (Some(h), Some(p), Some(_s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let Ok(header) = engine.decode(h.trim_end_matches('=')) else {
        return false;
    };
    let header_ok = std::str::from_utf8(&header)
        .map(|t| t.trim_start().starts_with('{') && t.contains("\"alg\""))
        .unwrap_or(false);
    header_ok && engine.decode(p.trim_end_matches('=')).is_ok()
}

/// HTTP Basic credentials: standard base64 of UTF-8 `user:password`, both non-empty.
pub fn basic_auth(value: &str) -> bool {
    use base64::Engine as _;
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(value.trim()) else {
        return false;
    };
    match std::str::from_utf8(&bytes) {
        Ok(text) => text.split_once(':').is_some_and(|(u, p)| {
            !u.is_empty() && !p.is_empty() && !text.chars().any(char::is_control)
        }),
        Err(_) => false,
    }
}

/// A secret that is not a placeholder: not all one character, no `*`, `$`, `<`, `{`,
/// and not a word like `null`, `none`, `redacted`, `changeme`, `password`.
pub fn secret(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    let first = value.chars().next();
    if value.chars().all(|c| Some(c) == first) || value.contains(['*', '$', '<', '{', '%']) {
        return false;
    }
    const PLACEHOLDERS: &[&str] = &[
        "null",
        "none",
        "redacted",
        "removed",
        "hidden",
        "masked",
        "changeme",
        "password",
        "xxxx",
        "example",
        "undefined",
        "true",
        "false",
    ];
    !PLACEHOLDERS.iter().any(|p| lower.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases: &[(Validator, &str, bool)] = &[
            (Validator::Ssn, "123-45-6789", true),
            (Validator::Ssn, "123456789", true),
            (Validator::Ssn, "123 45 6789", true),
            (Validator::Ssn, "000-12-3456", false),
            (Validator::Ssn, "666-12-3456", false),
            (Validator::Ssn, "900-12-3456", false),
            (Validator::Ssn, "999-12-3456", false),
            (Validator::Ssn, "123-00-4567", false),
            (Validator::Ssn, "123-45-0000", false),
            (Validator::Ssn, "078-05-1120", false),
            (Validator::Ssn, "219-09-9999", false),
            (Validator::Ssn, "12-345-6789", true),
            (Validator::Ssn, "1234567890", false),
            (Validator::Ssn, "12345678a", false),
            (Validator::Npi, "1234567893", true),
            (Validator::Npi, "1245319599", true),
            (Validator::Npi, "1234567890", false),
            (Validator::Npi, "3234567893", false),
            (Validator::Npi, "123456789", false),
            (Validator::Dea, "AB1234563", true),
            (Validator::Dea, "BJ1234563", true),
            (Validator::Dea, "AB1234564", false),
            (Validator::Dea, "IB1234563", false),
            (Validator::Dea, "A91234563", true),
            (Validator::Dea, "AB123456", false),
            (Validator::Mbi, "1EG4TE5MK73", true),
            (Validator::Mbi, "1EG4-TE5-MK73", true),
            (Validator::Mbi, "0EG4TE5MK73", false),
            (Validator::Mbi, "1SG4TE5MK73", false),
            (Validator::Mbi, "1EG4TE5MK7A", false),
            (Validator::Mbi, "1EG4TE5MKS3", false),
            (Validator::Luhn, "79927398713", true),
            (Validator::Luhn, "79927398710", false),
            (Validator::CreditCard, "4111111111111111", true),
            (Validator::CreditCard, "4111 1111 1111 1111", true),
            (Validator::CreditCard, "5555555555554444", true),
            (Validator::CreditCard, "2223003122003222", true),
            (Validator::CreditCard, "378282246310005", true),
            (Validator::CreditCard, "6011111111111117", true),
            (Validator::CreditCard, "3530111333300000", true),
            (Validator::CreditCard, "4111111111111112", false),
            (Validator::CreditCard, "9111111111111111", false),
            (Validator::CreditCard, "378282246310005000", false),
            (Validator::Icd10, "E11.9", true),
            (Validator::Icd10, "S72.001A", true),
            (Validator::Icd10, "C4A.0", true),
            (Validator::Icd10, "Z00", true),
            (Validator::Icd10, "E11.", false),
            (Validator::Icd10, "e11.9", false),
            (Validator::Icd10, "E1.9", false),
            (Validator::Icd10, "E11.12345", false),
            (Validator::Ndc, "1234-5678-90", true),
            (Validator::Ndc, "12345-678-90", true),
            (Validator::Ndc, "12345-6789-0", true),
            (Validator::Ndc, "12345-6789-01", true),
            (Validator::Ndc, "12345678901", true),
            (Validator::Ndc, "1234567890", false),
            (Validator::Ndc, "123-4567-890", false),
            (Validator::Ndc, "12345-67a9-0", false),
            (Validator::Date, "1980-02-29", true),
            (Validator::Date, "1981-02-29", false),
            (Validator::Date, "02/28/1975", true),
            (Validator::Date, "19750228", true),
            (Validator::Date, "1975-13-01", false),
            (Validator::Date, "1875-01-01", false),
            (Validator::Phone, "(415) 555-2671", true),
            (Validator::Phone, "+1 415-555-2671", true),
            (Validator::Phone, "415-555-0123", false),
            (Validator::Phone, "015-555-2671", false),
            (Validator::Phone, "911-555-2671", false),
            (
                Validator::Jwt,
                "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",
                true,
            ),
            (Validator::Jwt, "eyJ4IjoxfQ.eyJzdWIiOiJ4In0.c2ln", false),
            (Validator::Jwt, "a.b", false),
            (Validator::BasicAuth, "dXNlcjpwYXNz", true),
            (Validator::BasicAuth, "dXNlcnBhc3M=", false),
            (Validator::BasicAuth, "not base64!", false),
            (Validator::Secret, "S3cr3tValue!", true),
            (Validator::Secret, "********", false),
            (Validator::Secret, "${DB_PASSWORD}", false),
            (Validator::Secret, "<redacted>", false),
            (Validator::Secret, "null", false),
        ];
        for &(v, input, want) in cases {
            assert_eq!(v.check(input), want, "{v:?} on {input}");
        }
    }

    #[test]
    fn luhn_digits() {
        assert!(luhn(&[0]));
        assert!(luhn(&digits("8084012345678 93")));
        assert!(!luhn(&digits("808401234567890")));
    }
}
