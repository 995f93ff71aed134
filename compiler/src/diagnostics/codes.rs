//! The error codes: one per kind of problem, stable across releases, each with a golden test
//! (`tests/diagnostics/EXXXX-*.ppl`).

macro_rules! error_codes {
    ($($variant:ident = $code:literal, $title:literal;)*) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ErrorCode {
            $($variant,)*
        }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code users search for, e.g. `E0100`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                }
            }

            /// A one-line description of the kind of problem.
            pub fn title(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $title,)*
                }
            }
        }
    };
}

error_codes! {
    // Lexical and syntax errors.
    UnexpectedToken = "E0001", "syntax error: unexpected token";
    UnterminatedString = "E0002", "unterminated string literal";
    UnterminatedComment = "E0003", "unterminated block comment";
    InvalidCharacter = "E0004", "invalid character";
    InvalidNumber = "E0005", "number literal out of range";
    NestingTooDeep = "E0006", "brackets nested too deeply";
    MissingSemicolon = "E0007", "expected `;` after an expression statement";
    MismatchedDelimiter = "E0008", "closing delimiter does not match";
    UnclosedDelimiter = "E0009", "unclosed delimiter";

    // Names.
    UnknownName = "E0100", "unknown name";
    UnknownFunction = "E0101", "unknown function or distribution";
    DuplicateDefinition = "E0102", "item defined more than once";
    UnknownType = "E0103", "unknown type";
    DuplicateParameter = "E0104", "parameter or field named twice";
    UnknownField = "E0105", "no such field or address";
    MissingField = "E0106", "record value lacks a field its type declares";

    // Types and shapes.
    TypeMismatch = "E0200", "mismatched types";
    ShapeMismatch = "E0201", "mismatched shapes";
    WrongArgumentCount = "E0202", "wrong number of arguments";
    BadNamedArgument = "E0203", "unknown or repeated named argument";
    NotConstant = "E0204", "not a compile-time constant";
    InvalidOperands = "E0205", "operator not defined for these operands";
    InvalidIndex = "E0206", "value cannot be indexed this way";
    Recursion = "E0207", "recursive definition";
    MissingAnnotation = "E0208", "type annotation needed";
    MisplacedReturn = "E0209", "`return` outside a function body";
    PatternMismatch = "E0210", "pattern does not match the value";
    IndexOutOfBounds = "E0211", "constant index out of bounds";
    TypeTooLarge = "E0212", "type too large";
    MisplacedInitialiser = "E0213", "a random initialiser outside a `param`'s declaration";
    InvalidReturn = "E0214", "`return` where a function cannot stop";

    // Traces and addresses.
    MissingAddress = "E0300", "trace lacks an address the model needs";
    ExtraAddress = "E0301", "trace has an address the model does not have";
    MergeOverlap = "E0302", "merged records share a field";
    UnknownSelectAddress = "E0303", "`select` names an address the family does not have";
    DuplicateAddress = "E0304", "address sampled more than once";
    InvalidAddressIndex = "E0305", "indexed address outside a loop over its index";
    UnstackableArray = "E0306", "an array whose elements have too many dimensions";
    OutsideSupport = "E0307", "a guide draws values where the model's density is 0";

    // Expectations and estimators.
    OutsideExpectation = "E0400", "`sim` or `density` outside `E { … }`";
    InvalidEstimator = "E0401", "estimator not supported by the distribution";
    UnknownEstimator = "E0402", "unknown gradient estimator";
    NotAnEstimate = "E0403", "an estimate (`est`) is required";
    MisplacedChoice = "E0404", "random choice outside `gen` or `E { … }`";
    NotADistribution = "E0405", "`~` needs a distribution or a generative function";
    NotAGenerativeFunction = "E0406", "a generative function is required";
    MisplacedFactor = "E0407", "`factor` outside a `gen` body";

    // Commands.
    UnknownOption = "E0500", "unknown option";
    InvalidOption = "E0501", "invalid option value";
    InvalidWrt = "E0502", "`wrt` must list parameters";
    OverlappingWrt = "E0503", "parameter trained by two objectives";
    ResumeMismatch = "E0504", "saved results do not fit the program";
    InvalidImage = "E0505", "`image` outside a `print`, or without a usable file name";

    // Compilation (lowering and ADEV).
    Unsupported = "E0600", "not supported by the compiler yet";
    UnboundedContinuation = "E0601", "`enum` or `mvd` choice in a loop without constant bounds";
    ProgramTooLarge = "E0602", "program too large once its calls are inlined";
    InternalError = "E0699", "internal compiler error";

    // Run time.
    DomainError = "E0700", "distribution argument outside its domain";
    NotANumber = "E0701", "a computation produced NaN";
    OutOfBounds = "E0702", "index out of bounds at run time";
    RuntimeFailure = "E0703", "run-time failure";
    LoadFailed = "E0704", "a data file cannot be loaded";
}
