//! The chat assistant's account, as the two domains that share it know it: users makes it (when an
//! assistant is configured) and shows its badge; chat lets people talk to it and writes its answers. A
//! fixed id, so neither asks the other.

use uuid::Uuid;

/// The assistant's user id, the same on every installation.
pub const USER_ID: Uuid = Uuid::from_u128(0x0000_0000_0000_7000_8000_a551_57a0_0001);

/// The nickname it takes (people mention it as `@assistant`), or [`FALLBACK_NICKNAME`] if someone has it.
pub const NICKNAME: &str = "assistant";
pub const FALLBACK_NICKNAME: &str = "parley_assistant";

/// `PARLEY_ASSISTANT_URL`: the OpenAI-compatible endpoint; the assistant exists only where it is set.
pub const URL_VAR: &str = "PARLEY_ASSISTANT_URL";
