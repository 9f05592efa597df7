//! The category taxonomy of sections 二(一)–二(十二) and routing of a category to its body
//! (TRF-3).
//!
//! STUB: the signatures below are the agreed interface; the bodies are being written.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::BodyCode;

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
}

/// Why the taxonomy data or a category code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TaxonomyError {
    /// The category code is not in the taxonomy.
    #[error("unknown category code {0:?}")]
    UnknownCategory(String),
}

/// The whole taxonomy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taxonomy {
    bodies: BTreeMap<BodyCode, Body>,
    categories: BTreeMap<CategoryCode, Category>,
}

impl Taxonomy {
    /// The taxonomy shipped with tousu, loaded and validated.
    pub fn builtin() -> Result<Taxonomy, TaxonomyError> {
        unimplemented!()
    }

    /// Checks a category code against the taxonomy.
    pub fn category_code(&self, code: &str) -> Result<CategoryCode, TaxonomyError> {
        let _ = code;
        unimplemented!()
    }

    /// One category.
    pub fn category(&self, code: &CategoryCode) -> Option<&Category> {
        self.categories.get(code)
    }

    /// The body responsible for a category (TRF-3).
    pub fn route(&self, code: &CategoryCode) -> Result<BodyCode, TaxonomyError> {
        self.categories
            .get(code)
            .map(|category| category.body)
            .ok_or_else(|| TaxonomyError::UnknownCategory(code.0.clone()))
    }

    /// Every category, ordered by code.
    pub fn categories(&self) -> impl Iterator<Item = &Category> {
        self.categories.values()
    }

    /// Every body, in the order of the procedure's sections.
    pub fn bodies(&self) -> impl Iterator<Item = &Body> {
        self.bodies.values()
    }
}
