//! The category taxonomy of sections 二(一)–二(十二) and routing of a category to its body
//! (TRF-3).
//!
//! Every numbered matter of the twelve sections is a category, or, where the matter has
//! circled sub-items, every sub-item is. The taxonomy is data shipped in the repository
//! (`crates/domain/data/categories.toml`, embedded at compile time) and is validated each
//! time it is loaded, so a [`Taxonomy`] value always holds all twelve bodies in section
//! order, each with its categories numbered without gaps and its `…-OTHER` category, if
//! any, last. A category decides its responsible body (TRF-3): the body whose section
//! lists it, which is also the prefix of its code.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::BodyCode;
use crate::limits::Echo;

/// The taxonomy data shipped with tousu.
const BUILTIN_CATEGORIES_TOML: &str = include_str!("../data/categories.toml");

/// The suffix of a body's "other matters" category (法律法规规章规定的其他事项 and its
/// equivalents), e.g. `ZJ-OTHER`.
const OTHER_SUFFIX: &str = "OTHER";

/// A category code such as `ZJ-1-3`, `FG-4`, `XF-6` or `SJ-OTHER`, known to exist in the
/// taxonomy it was checked against.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CategoryCode(String);

impl CategoryCode {
    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CategoryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One responsible body with its names and section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    /// The code.
    pub code: BodyCode,
    /// The Chinese name, e.g. 住建部门.
    pub name_zh: String,
    /// The English name.
    pub name_en: String,
    /// The section of the procedure, e.g. 二(一).
    pub section: String,
}

/// One category: a numbered matter, or a circled sub-item of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Category {
    /// The code.
    pub code: CategoryCode,
    /// The responsible body (TRF-3).
    pub body: BodyCode,
    /// The Chinese text of the matter, as the procedure words it.
    pub text_zh: String,
    /// For a sub-item, the Chinese heading of its numbered item.
    pub heading_zh: Option<String>,
    /// Interpretation 22: whether a substantiated lead of this category is the company's
    /// responsibility (属企业责任) unless the handling body finds otherwise. False for matters
    /// of residents' or third parties' conduct and of government bodies' own duties.
    pub attributable: bool,
}

impl Category {
    /// Whether this is its body's "other matters" category (`…-OTHER`): the last item of its
    /// section, 法律法规规章规定的其他事项 or the body's differently worded equivalent.
    pub fn is_other(&self) -> bool {
        self.code.as_str().rsplit_once('-').is_some_and(|(_, number)| number == OTHER_SUFFIX)
    }
}

/// Why the taxonomy data or a category code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TaxonomyError {
    /// The category code is not in the taxonomy.
    #[error("unknown category code {}", Echo(.0))]
    UnknownCategory(String),
    /// The taxonomy data is not TOML of the expected shape.
    #[error("taxonomy data is not valid: {0}")]
    InvalidData(String),
    /// A body entry names a body code that is not one of the twelve.
    #[error("unknown body code {0:?} in the taxonomy data")]
    UnknownBody(String),
    /// A body appears more than once.
    #[error("body {0} appears more than once")]
    DuplicateBody(BodyCode),
    /// A body does not appear at all.
    #[error("body {0} is missing")]
    MissingBody(BodyCode),
    /// The bodies are not in the order of the procedure's sections.
    #[error("body {found} is out of section order: expected {expected} in its place")]
    BodyOutOfOrder {
        /// The body found.
        found: BodyCode,
        /// The body that belongs in its place.
        expected: BodyCode,
    },
    /// A body is labelled with a section other than its own.
    #[error("body {body} has section {found:?}: expected {expected:?}")]
    WrongSection {
        /// The body.
        body: BodyCode,
        /// The section found.
        found: String,
        /// The body's section.
        expected: &'static str,
    },
    /// A body has no category.
    #[error("body {0} has no category")]
    NoCategories(BodyCode),
    /// A text field is empty or only whitespace.
    #[error("{entry} has an empty {field}")]
    EmptyText {
        /// The entry, e.g. `body ZJ` or `category ZJ-1-3`.
        entry: String,
        /// The field, e.g. `text_zh`.
        field: &'static str,
    },
    /// A category code is not of the form `BODY-ITEM`, `BODY-ITEM-SUBITEM` or `BODY-OTHER`
    /// with numbers from 1 and no leading zeros.
    #[error("malformed category code {}: expected BODY-ITEM, BODY-ITEM-SUBITEM or BODY-OTHER", Echo(.0))]
    MalformedCode(String),
    /// A category code's prefix is not the code of the body it is listed under.
    #[error("category {code} is listed under body {body} but its code does not start with {body}-")]
    WrongBodyPrefix {
        /// The category code.
        code: String,
        /// The body it is listed under.
        body: BodyCode,
    },
    /// A category code appears more than once.
    #[error("category {0} appears more than once")]
    DuplicateCode(String),
    /// A category's number does not follow the one before it: numbering has a gap, goes
    /// backwards or mixes an item with sub-items of the same number.
    #[error("category {code} is out of sequence: expected {expected}")]
    NumberOutOfSequence {
        /// The category code.
        code: String,
        /// The codes that may come next, e.g. `ZJ-1-9, ZJ-2 or ZJ-2-1`.
        expected: String,
    },
    /// A category follows its body's `…-OTHER` category, which must be the body's last.
    #[error("category {next} follows {other}, which must be its body's last category")]
    OtherNotLast {
        /// The `…-OTHER` category.
        other: String,
        /// The category after it.
        next: String,
    },
    /// A sub-item has no heading for its numbered item.
    #[error("category {0} is a sub-item but has no heading_zh")]
    MissingHeading(String),
    /// A category that is not a sub-item has a heading.
    #[error("category {0} is not a sub-item but has a heading_zh")]
    UnexpectedHeading(String),
    /// Sub-items of one numbered item disagree on its heading.
    #[error("category {code} has heading_zh {found:?}: expected {expected:?} as its item's other sub-items")]
    HeadingMismatch {
        /// The category code.
        code: String,
        /// The heading found.
        found: String,
        /// The heading of the item's earlier sub-items.
        expected: String,
    },
}

/// The whole taxonomy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taxonomy {
    /// Every body; `BodyCode`'s order is the section order.
    bodies: BTreeMap<BodyCode, Body>,
    /// Every category, keyed by code.
    categories: BTreeMap<CategoryCode, Category>,
    /// Every category code in the order of the procedure.
    procedure_order: Vec<CategoryCode>,
}

impl Taxonomy {
    /// The taxonomy shipped with tousu, loaded and validated.
    pub fn builtin() -> Result<Taxonomy, TaxonomyError> {
        Taxonomy::parse(BUILTIN_CATEGORIES_TOML)
    }

    /// Loads and validates taxonomy data in the format of `data/categories.toml`: one
    /// `[[body]]` table per body (`code`, `name_zh`, `name_en`, `section`), in section
    /// order, each with its `[[body.category]]` tables (`code`, optional `heading_zh`,
    /// `text_zh`, optional `attributable`) in the order of the procedure.
    pub fn parse(text: &str) -> Result<Taxonomy, TaxonomyError> {
        let file: TaxonomyFile = toml::from_str(text).map_err(|error| TaxonomyError::InvalidData(error.to_string()))?;

        let mut body_codes = Vec::with_capacity(file.body.len());
        for entry in &file.body {
            let code: BodyCode = entry.code.parse().map_err(|_| TaxonomyError::UnknownBody(entry.code.clone()))?;
            if body_codes.contains(&code) {
                return Err(TaxonomyError::DuplicateBody(code));
            }
            body_codes.push(code);
        }
        if let Some(missing) = BodyCode::ALL.into_iter().find(|body| !body_codes.contains(body)) {
            return Err(TaxonomyError::MissingBody(missing));
        }
        // Every body is present exactly once, so a mismatch here is a wrong order.
        if let Some((&found, expected)) =
            body_codes.iter().zip(BodyCode::ALL).find(|(found, expected)| **found != *expected)
        {
            return Err(TaxonomyError::BodyOutOfOrder { found, expected });
        }

        let mut taxonomy =
            Taxonomy { bodies: BTreeMap::new(), categories: BTreeMap::new(), procedure_order: Vec::new() };
        for (code, entry) in body_codes.into_iter().zip(file.body) {
            taxonomy.add_body(code, entry)?;
        }
        Ok(taxonomy)
    }

    /// Validates one body's entry and its categories and adds them.
    fn add_body(&mut self, code: BodyCode, entry: BodyEntry) -> Result<(), TaxonomyError> {
        let expected_section = section_of(code);
        if entry.section != expected_section {
            return Err(TaxonomyError::WrongSection { body: code, found: entry.section, expected: expected_section });
        }
        let entry_name = format!("body {code}");
        require_text(&entry_name, "name_zh", &entry.name_zh)?;
        require_text(&entry_name, "name_en", &entry.name_en)?;
        if entry.category.is_empty() {
            return Err(TaxonomyError::NoCategories(code));
        }

        let mut numbering = Numbering::default();
        for category in entry.category {
            let number = parse_category_number(code, &category.code)?;
            let category_code = CategoryCode(category.code);
            if self.categories.contains_key(&category_code) {
                return Err(TaxonomyError::DuplicateCode(category_code.0));
            }
            numbering.advance(code, &category_code, number, category.heading_zh.as_deref())?;
            require_text(&format!("category {category_code}"), "text_zh", &category.text_zh)?;
            self.procedure_order.push(category_code.clone());
            self.categories.insert(
                category_code.clone(),
                Category {
                    code: category_code,
                    body: code,
                    text_zh: category.text_zh,
                    heading_zh: category.heading_zh,
                    attributable: category.attributable,
                },
            );
        }

        self.bodies.insert(code, Body { code, name_zh: entry.name_zh, name_en: entry.name_en, section: entry.section });
        Ok(())
    }

    /// Checks a category code against the taxonomy.
    pub fn category_code(&self, code: &str) -> Result<CategoryCode, TaxonomyError> {
        let candidate = CategoryCode(code.to_owned());
        if self.categories.contains_key(&candidate) {
            Ok(candidate)
        } else {
            Err(TaxonomyError::UnknownCategory(candidate.0))
        }
    }

    /// One category.
    pub fn category(&self, code: &CategoryCode) -> Option<&Category> {
        self.categories.get(code)
    }

    /// The body responsible for a category (TRF-3).
    pub fn route(&self, code: &CategoryCode) -> Result<BodyCode, TaxonomyError> {
        // TRF-3: the category decides the body; validation guarantees that it is the body
        // whose section lists the category.
        self.categories
            .get(code)
            .map(|category| category.body)
            .ok_or_else(|| TaxonomyError::UnknownCategory(code.0.clone()))
    }

    /// Every category, ordered by code.
    pub fn categories(&self) -> impl Iterator<Item = &Category> {
        self.categories.values()
    }

    /// One body's categories, in the order of the procedure (so `JB-2` comes before
    /// `JB-10`, and the `…-OTHER` category, if any, last).
    pub fn categories_of(&self, body: BodyCode) -> impl Iterator<Item = &Category> {
        self.procedure_order
            .iter()
            .filter_map(|code| self.categories.get(code))
            .filter(move |category| category.body == body)
    }

    /// Every body, in the order of the procedure's sections.
    pub fn bodies(&self) -> impl Iterator<Item = &Body> {
        self.bodies.values()
    }

    /// One body. A taxonomy that loaded holds all twelve, so this is always `Some`.
    pub fn body(&self, code: BodyCode) -> Option<&Body> {
        self.bodies.get(&code)
    }
}

/// The taxonomy data file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TaxonomyFile {
    #[serde(default)]
    body: Vec<BodyEntry>,
}

/// One `[[body]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BodyEntry {
    code: String,
    name_zh: String,
    name_en: String,
    section: String,
    #[serde(default)]
    category: Vec<CategoryEntry>,
}

/// One `[[body.category]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CategoryEntry {
    code: String,
    heading_zh: Option<String>,
    text_zh: String,
    #[serde(default = "attributable_unless_marked")]
    attributable: bool,
}

/// A category is the company's own matter unless the data marks it otherwise.
fn attributable_unless_marked() -> bool {
    true
}

/// The part of a category code after the body prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CategoryNumber {
    /// A numbered matter without sub-items, e.g. `FG-4`.
    Item(u32),
    /// A circled sub-item of a numbered matter, e.g. `ZJ-1-3`.
    SubItem(u32, u32),
    /// The body's "other matters" category, e.g. `ZJ-OTHER`.
    Other,
}

/// The section of the procedure that lists a body's matters.
fn section_of(body: BodyCode) -> &'static str {
    match body {
        BodyCode::ZJ => "二(一)",
        BodyCode::FG => "二(二)",
        BodyCode::SJ => "二(三)",
        BodyCode::XF => "二(四)",
        BodyCode::ZR => "二(五)",
        BodyCode::GA => "二(六)",
        BodyCode::NY => "二(七)",
        BodyCode::WT => "二(八)",
        BodyCode::XZ => "二(九)",
        BodyCode::ZF => "二(十)",
        BodyCode::JB => "二(十一)",
        BodyCode::SQ => "二(十二)",
    }
}

/// Refuses an empty or whitespace-only text field.
fn require_text(entry: &str, field: &'static str, text: &str) -> Result<(), TaxonomyError> {
    if text.trim().is_empty() {
        return Err(TaxonomyError::EmptyText { entry: entry.to_owned(), field });
    }
    Ok(())
}

/// Splits a category code listed under `body` into its number, checking its form and
/// its body prefix.
fn parse_category_number(body: BodyCode, code: &str) -> Result<CategoryNumber, TaxonomyError> {
    let malformed = || TaxonomyError::MalformedCode(code.to_owned());
    let (prefix, rest) = code.split_once('-').ok_or_else(malformed)?;
    if prefix != body.as_str() {
        return Err(TaxonomyError::WrongBodyPrefix { code: code.to_owned(), body });
    }
    if rest == OTHER_SUFFIX {
        return Ok(CategoryNumber::Other);
    }
    let positive_number = |text: &str| -> Option<u32> {
        let well_formed = !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()) && !text.starts_with('0');
        if well_formed { text.parse().ok() } else { None }
    };
    match rest.split_once('-') {
        None => positive_number(rest).map(CategoryNumber::Item),
        Some((item, sub_item)) => positive_number(item)
            .zip(positive_number(sub_item))
            .map(|(item, sub_item)| CategoryNumber::SubItem(item, sub_item)),
    }
    .ok_or_else(malformed)
}

/// Where one body's numbering has got to, so that each category can be checked to follow
/// the one before it.
#[derive(Debug, Default)]
struct Numbering {
    /// The last numbered item seen; 0 before the first.
    last_item: u32,
    /// If the last item has sub-items, the last sub-item seen and the item's heading.
    last_sub_item: Option<(u32, String)>,
    /// The body's `…-OTHER` category, once seen.
    other: Option<String>,
}

impl Numbering {
    /// Checks that `code` may come next, with the heading its kind requires, and records it.
    fn advance(
        &mut self,
        body: BodyCode,
        code: &CategoryCode,
        number: CategoryNumber,
        heading_zh: Option<&str>,
    ) -> Result<(), TaxonomyError> {
        if let Some(other) = &self.other {
            return Err(TaxonomyError::OtherNotLast { other: other.clone(), next: code.0.clone() });
        }
        match number {
            CategoryNumber::Other => {
                if heading_zh.is_some() {
                    return Err(TaxonomyError::UnexpectedHeading(code.0.clone()));
                }
                self.other = Some(code.0.clone());
            }
            CategoryNumber::Item(item) => {
                if item != self.last_item + 1 {
                    return Err(self.out_of_sequence(body, code));
                }
                if heading_zh.is_some() {
                    return Err(TaxonomyError::UnexpectedHeading(code.0.clone()));
                }
                self.last_item = item;
                self.last_sub_item = None;
            }
            CategoryNumber::SubItem(item, sub_item) => {
                let continued_heading = match &self.last_sub_item {
                    Some((last_sub_item, heading)) if item == self.last_item && sub_item == last_sub_item + 1 => {
                        Some(heading.clone())
                    }
                    _ => None,
                };
                let starts_item = item == self.last_item + 1 && sub_item == 1;
                if continued_heading.is_none() && !starts_item {
                    return Err(self.out_of_sequence(body, code));
                }
                let heading = heading_zh
                    .filter(|heading| !heading.trim().is_empty())
                    .ok_or_else(|| TaxonomyError::MissingHeading(code.0.clone()))?;
                if let Some(expected) = continued_heading
                    && heading != expected
                {
                    return Err(TaxonomyError::HeadingMismatch {
                        code: code.0.clone(),
                        found: heading.to_owned(),
                        expected,
                    });
                }
                self.last_item = item;
                self.last_sub_item = Some((sub_item, heading.to_owned()));
            }
        }
        Ok(())
    }

    /// The error for a category whose number does not follow the last one, listing the
    /// codes that could have come next.
    fn out_of_sequence(&self, body: BodyCode, code: &CategoryCode) -> TaxonomyError {
        let next_item = self.last_item + 1;
        let expected = match &self.last_sub_item {
            Some((last_sub_item, _)) => {
                format!("{body}-{}-{}, {body}-{next_item} or {body}-{next_item}-1", self.last_item, last_sub_item + 1)
            }
            None => format!("{body}-{next_item} or {body}-{next_item}-1"),
        };
        TaxonomyError::NumberOutOfSequence { code: code.0.clone(), expected }
    }
}
