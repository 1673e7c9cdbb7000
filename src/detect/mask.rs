//! Canonical forms (what is hashed) and masks (what is shown) per kind.
//!
//! The canonical form makes the same identifier hash the same however it was
//! written: SSN without dashes, e-mail lower-cased, NDC as 11 digits. The mask keeps
//! at most the last four characters of long numeric identifiers and the shape of
//! everything else, never enough to recover the value.

/// The canonical form of a value of `kind`, the input of the keyed hash.
pub fn canonical(kind: &str, value: &str) -> String {
    let digits = || {
        value
            .chars()
            .filter(char::is_ascii_digit)
            .collect::<String>()
    };
    match kind {
        "us_ssn" | "us_npi" | "credit_card" => digits(),
        "phone" => {
            let d = digits();
            match d.strip_prefix('1') {
                Some(rest) if d.len() == 11 => rest.to_string(),
                _ => d,
            }
        }
        "us_mbi" | "us_dea" | "icd10" => value
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_uppercase())
            .collect(),
        "email" => value.trim().to_lowercase(),
        "ndc" => ndc11(value),
        "dob" => dob8(value),
        _ => value.trim().to_string(),
    }
}

/// NDC in the 11-digit 5-4-2 form (the HIPAA billing form).
fn ndc11(value: &str) -> String {
    let parts: Vec<&str> = value.split('-').collect();
    match parts.as_slice() {
        [a, b, c] if a.len() == 4 => format!("0{a}{b}{c}"),
        [a, b, c] if b.len() == 3 => format!("{a}0{b}{c}"),
        [a, b, c] if c.len() == 1 => format!("{a}{b}0{c}"),
        _ => value.chars().filter(char::is_ascii_digit).collect(),
    }
}

/// A date as YYYYMMDD whichever way it was written.
fn dob8(value: &str) -> String {
    let d: String = value.chars().filter(char::is_ascii_digit).collect();
    let b = value.as_bytes();
    if d.len() == 8 && b.len() == 10 && (b[2] == b'/' || b[2] == b'-') {
        format!("{}{}", &d[4..], &d[..4])
    } else {
        d
    }
}

/// Replace every letter and digit with `*`, keeping punctuation (the shape).
pub fn shape(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_alphanumeric() { '*' } else { c })
        .collect()
}

/// Stars for all but the last four characters of the canonical value, shown only
/// when the value has at least nine characters.
fn last4(canon: &str) -> String {
    let n = canon.chars().count();
    if n < 9 {
        return "*".repeat(n.max(3));
    }
    let tail: String = canon.chars().skip(n - 4).collect();
    format!("{}{}", "*".repeat(n - 4), tail)
}

/// The mask of a value of `kind`, shown in findings instead of the value.
pub fn mask(kind: &str, value: &str) -> String {
    let canon = canonical(kind, value);
    let tail = |n: usize| -> String {
        canon
            .chars()
            .skip(canon.chars().count().saturating_sub(n))
            .collect()
    };
    match kind {
        "us_ssn" if canon.len() == 9 => format!("***-**-{}", tail(4)),
        "phone" if canon.len() == 10 => format!("***-***-{}", tail(4)),
        "credit_card" | "us_npi" | "us_mbi" | "us_dea" | "mrn" => last4(&canon),
        "email" => match canon.rsplit_once('.') {
            Some((_, tld)) if tld.len() <= 6 && canon.contains('@') => format!("***@***.{tld}"),
            _ => String::from("***@***"),
        },
        "aws_access_key" => {
            let prefix: String = canon.chars().take(4).collect();
            format!(
                "{prefix}{}",
                "*".repeat(canon.chars().count().saturating_sub(4))
            )
        }
        "jwt" => String::from("eyJ***.***.***"),
        "private_key" => String::from("-----BEGIN *** PRIVATE KEY-----"),
        "bearer_token" | "api_key" | "basic_auth" | "password" | "person_name"
        | "street_address" | "patient_ref" | "hl7_pid" => String::from("***"),
        _ => shape(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms() {
        let cases = [
            ("us_ssn", "123-45-6789", "123456789"),
            ("phone", "+1 (415) 555-2671", "4155552671"),
            ("email", "John.Doe@Example.COM", "john.doe@example.com"),
            ("ndc", "1234-5678-90", "01234567890"),
            ("ndc", "12345-678-90", "12345067890"),
            ("ndc", "12345-6789-0", "12345678900"),
            ("ndc", "12345678901", "12345678901"),
            ("dob", "02/28/1975", "19750228"),
            ("dob", "1975-02-28", "19750228"),
            ("us_mbi", "1eg4-te5-mk73", "1EG4TE5MK73"),
            ("icd10", "E11.9", "E119"),
        ];
        for (kind, v, want) in cases {
            assert_eq!(canonical(kind, v), want, "{kind} {v}");
        }
    }

    #[test]
    fn masks_hide_values() {
        let cases = [
            ("us_ssn", "123-45-6789", "***-**-6789"),
            ("phone", "(415) 555-2671", "***-***-2671"),
            ("credit_card", "4111 1111 1111 1111", "************1111"),
            ("email", "john@example.com", "***@***.com"),
            ("mrn", "12345", "*****"),
            ("dob", "1975-02-28", "****-**-**"),
            (
                "aws_access_key",
                "AKIAIOSFODNN7EXAMPLE",
                "AKIA****************",
            ),
            ("password", "hunter2", "***"),
        ];
        for (kind, v, want) in cases {
            assert_eq!(mask(kind, v), want, "{kind}");
        }
    }
}
