//! What a PostgreSQL error says about running the statement again, read from its SQLSTATE
//! class: one table, asked two questions. [`transient`]: may the same statement simply succeed
//! if run again (the send worker retries on it)? [`caused_by_an_item`]: can one item of a grouped
//! statement have caused it (group commit then runs the items one by one)? A deadlock (class 40)
//! is both.

/// The kinds of failure, as far as running a statement again is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Goes away if the same statement is simply run again, and no item caused it: a lost or
    /// refused connection (08), the server short of resources (53) or restarting, a cancelled
    /// statement (57), a lock timeout (55P03); an I/O or TLS error, no pooled connection in time.
    Transient,
    /// A transaction rollback (40), such as a serialization failure or a deadlock: a rerun
    /// resolves it, and one item of a group can cause it.
    Rollback,
    /// An item's doing, the same answer every time: a data exception (22), an integrity
    /// constraint (23), a PL/pgSQL raise (P0), or a database error without a SQLSTATE.
    Item,
    /// Anything else (a missing function, a protocol error, a closed pool...).
    Other,
}

/// SQLSTATE classes (two characters) and single codes, and what they are.
const TABLE: [(&str, Class); 8] = [
    ("08", Class::Transient),
    ("53", Class::Transient),
    ("57", Class::Transient),
    ("55P03", Class::Transient),
    ("40", Class::Rollback),
    ("22", Class::Item),
    ("23", Class::Item),
    ("P0", Class::Item),
];

impl Class {
    /// The class of `e`.
    pub fn of(e: &sqlx::Error) -> Class {
        match e {
            sqlx::Error::Database(db) => Class::of_database(&**db),
            sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut => {
                Class::Transient
            }
            _ => Class::Other,
        }
    }

    /// The class of an error PostgreSQL returned, by its SQLSTATE.
    pub fn of_database(e: &dyn sqlx::error::DatabaseError) -> Class {
        let Some(code) = e.code() else {
            return Class::Item;
        };
        TABLE
            .iter()
            .find(|(prefix, _)| code.starts_with(prefix))
            .map_or(Class::Other, |(_, class)| *class)
    }

    /// Whether the same statement may succeed if simply run again.
    pub fn transient(self) -> bool {
        matches!(self, Class::Transient | Class::Rollback)
    }

    /// Whether one item of a grouped statement can have caused it.
    pub fn caused_by_an_item(self) -> bool {
        matches!(self, Class::Rollback | Class::Item)
    }
}

/// Whether `e` may go away if the same statement is simply run again: a lost or refused
/// connection, a serialization failure or deadlock (class 40), a lock timeout, a cancelled
/// statement, the server restarting or short of resources. Not a constraint violation, a data
/// error or a raised exception: those answer the same every time.
pub fn transient(e: &sqlx::Error) -> bool {
    Class::of(e).transient()
}

/// Whether one item of a statement can have caused `e`: data exceptions (22), integrity
/// constraints (23), transaction rollbacks such as deadlocks (40), PL/pgSQL raises (P0).
pub fn caused_by_an_item(e: &dyn sqlx::error::DatabaseError) -> bool {
    Class::of_database(e).caused_by_an_item()
}

/// Test support: database errors with a chosen SQLSTATE, as sqlx reports PostgreSQL's.
#[cfg(test)]
pub(crate) mod testing {
    /// A database error with its SQLSTATE.
    #[derive(Debug)]
    pub struct Refused(pub &'static str);

    impl Refused {
        pub fn error(code: &'static str) -> sqlx::Error {
            sqlx::Error::Database(Box::new(Refused(code)))
        }
    }

    impl std::fmt::Display for Refused {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "refused with SQLSTATE {}", self.0)
        }
    }

    impl std::error::Error for Refused {}

    impl sqlx::error::DatabaseError for Refused {
        fn message(&self) -> &str {
            "refused"
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
            Some(self.0.into())
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::Refused;
    use super::*;

    #[test]
    fn only_errors_that_can_pass_are_transient() {
        for code in [
            "40001", "40P01", "55P03", "57014", "57P01", "08006", "53300",
        ] {
            assert!(transient(&Refused::error(code)), "{code}");
        }
        // Constraint violations, data errors and raised exceptions answer the same every time.
        for code in ["23505", "23514", "22003", "P0001", "42883"] {
            assert!(!transient(&Refused::error(code)), "{code}");
        }
        assert!(transient(&sqlx::Error::PoolTimedOut));
        assert!(!transient(&sqlx::Error::PoolClosed));
        assert!(!transient(&sqlx::Error::Protocol(
            "unexpected outcome".into()
        )));
    }

    #[test]
    fn one_table_answers_both_questions() {
        // (SQLSTATE, transient, caused by an item)
        for (code, is_transient, by_an_item) in [
            ("08006", true, false),
            ("53300", true, false),
            ("57014", true, false),
            ("57P01", true, false),
            ("55P03", true, false),
            ("40001", true, true),
            ("40P01", true, true),
            ("22003", false, true),
            ("23505", false, true),
            ("23514", false, true),
            ("P0001", false, true),
            ("42883", false, false),
            ("55000", false, false),
        ] {
            let class = Class::of_database(&Refused(code));
            assert_eq!(class.transient(), is_transient, "{code}");
            assert_eq!(class.caused_by_an_item(), by_an_item, "{code}");
            assert_eq!(transient(&Refused::error(code)), is_transient, "{code}");
            assert_eq!(caused_by_an_item(&Refused(code)), by_an_item, "{code}");
        }
    }
}
