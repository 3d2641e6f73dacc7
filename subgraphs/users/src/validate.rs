//! Input rules for accounts and profiles. Each returns a client-safe message naming the field.

use crate::error::{Result, UsersError};

fn invalid(message: &str) -> UsersError {
    UsersError::Invalid(message.to_string())
}

/// The longest email address (RFC 5321's path limit).
pub const MAX_EMAIL: usize = 254;
/// 128 characters of up to 4 bytes: a password longer than this can never be right.
pub const MAX_PASSWORD_BYTES: usize = 128 * 4;
/// Refresh, reset and verification tokens are 43 characters; this leaves room and no more.
pub const MAX_TOKEN_BYTES: usize = 256;

/// Refuses a value over `max` bytes before anything is stored, hashed or looked up with it.
pub fn bounded(field: &str, value: &str, max: usize) -> Result<()> {
    if value.len() > max {
        return Err(UsersError::Invalid(format!("{field}: at most {max} bytes")));
    }
    Ok(())
}

/// Lower-cased, trimmed email, if it is a deliverable-looking address.
pub fn email(raw: &str) -> Result<String> {
    let email = raw.trim().to_lowercase();
    let ok = email.len() <= MAX_EMAIL
        && email.parse::<lettre::Address>().is_ok()
        && email
            .rsplit_once('@')
            .is_some_and(|(_, d)| d.contains('.') && !d.starts_with('.') && !d.ends_with('.'))
        // Reserved (RFC 2606): never an address, and the stand-in of accounts without one.
        && !email.ends_with(".invalid");
    if ok {
        Ok(email)
    } else {
        Err(invalid("email: not a valid email address"))
    }
}

/// 3–30 letters, digits or underscores.
pub fn nickname(raw: &str) -> Result<String> {
    let nick = raw.trim();
    let ok = (3..=30).contains(&nick.chars().count())
        && nick.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(nick.to_string())
    } else {
        Err(invalid("nickname: 3 to 30 letters, digits or underscores"))
    }
}

/// 1–80 characters after trimming, no control characters.
pub fn name(raw: &str) -> Result<String> {
    let name = raw.trim();
    if (1..=80).contains(&name.chars().count()) && !name.chars().any(char::is_control) {
        Ok(name.to_string())
    } else {
        Err(invalid("name: 1 to 80 characters"))
    }
}

/// Password policy: 10–128 characters, at least one letter and one non-letter, not the email or nickname.
pub fn password(password: &str, email: &str, nickname: &str) -> Result<()> {
    let len = password.chars().count();
    if !(10..=128).contains(&len) {
        return Err(invalid("password: 10 to 128 characters"));
    }
    let has_letter = password.chars().any(char::is_alphabetic);
    let has_other = password.chars().any(|c| !c.is_alphabetic());
    if !has_letter || !has_other {
        return Err(invalid(
            "password: use letters and at least one digit or symbol",
        ));
    }
    let lower = password.to_lowercase();
    if lower == email.to_lowercase() || lower == nickname.to_lowercase() {
        return Err(invalid(
            "password: must differ from your email and nickname",
        ));
    }
    Ok(())
}

/// Optional free text with a length limit; empty means "clear".
pub fn optional_text(field: &str, raw: Option<String>, max: usize) -> Result<Option<String>> {
    match raw.map(|s| s.trim().to_string()) {
        None => Ok(None),
        Some(s) if s.chars().count() > max => Err(UsersError::Invalid(format!(
            "{field}: at most {max} characters"
        ))),
        Some(s) => Ok(Some(s)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            email(" Alice@Example.COM ").expect("valid"),
            "alice@example.com"
        );
        for bad in [
            "",
            "alice",
            "alice@",
            "@x.io",
            "a b@x.io",
            "alice@localhost",
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn nicknames() {
        assert!(nickname("alice_1").is_ok());
        for bad in ["al", "a-b-c", "ünï", &"x".repeat(31)] {
            assert!(nickname(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords() {
        assert!(password("correct horse 1", "a@b.io", "alice").is_ok());
        assert!(password("short1", "a@b.io", "alice").is_err());
        assert!(password("onlyletterslong", "a@b.io", "alice").is_err());
        assert!(password("1234567890", "a@b.io", "alice").is_err());
        assert!(password("alice_12345", "a@b.io", "alice_12345").is_err());
    }
}
