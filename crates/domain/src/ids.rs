//! Typed identifiers of the procedure: bodies, leads, companies, places and people.
//!
//! Every identifier is validated when it is made, so a value of one of these types is known
//! to be well formed wherever it travels.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A responsible body (承办主体) of sections 二(一)–二(十二).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum BodyCode {
    /// 住建部门: housing and construction, the registrar and coordinator.
    ZJ,
    /// 发展改革部门: development and reform.
    FG,
    /// 市场监督管理部门: market regulation.
    SJ,
    /// 消防救援部门: fire and rescue.
    XF,
    /// 自然资源部门: natural resources.
    ZR,
    /// 公安部门: public security.
    GA,
    /// 能源部门: energy.
    NY,
    /// 卫体部门: health and sports.
    WT,
    /// 行政审批服务管理部门: administrative approval, runs the 12345 hotline.
    XZ,
    /// 城市管理综合执法部门: urban-management law enforcement.
    ZF,
    /// 街办（乡镇）: street office or township.
    JB,
    /// 社区: community.
    SQ,
}

impl BodyCode {
    /// All twelve bodies in the order of the procedure's sections.
    pub const ALL: [BodyCode; 12] = [
        BodyCode::ZJ,
        BodyCode::FG,
        BodyCode::SJ,
        BodyCode::XF,
        BodyCode::ZR,
        BodyCode::GA,
        BodyCode::NY,
        BodyCode::WT,
        BodyCode::XZ,
        BodyCode::ZF,
        BodyCode::JB,
        BodyCode::SQ,
    ];

    /// The two-letter code used in category codes and in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            BodyCode::ZJ => "ZJ",
            BodyCode::FG => "FG",
            BodyCode::SJ => "SJ",
            BodyCode::XF => "XF",
            BodyCode::ZR => "ZR",
            BodyCode::GA => "GA",
            BodyCode::NY => "NY",
            BodyCode::WT => "WT",
            BodyCode::XZ => "XZ",
            BodyCode::ZF => "ZF",
            BodyCode::JB => "JB",
            BodyCode::SQ => "SQ",
        }
    }
}

impl fmt::Display for BodyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BodyCode {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BodyCode::ALL
            .into_iter()
            .find(|body| body.as_str() == s)
            .ok_or_else(|| IdError::UnknownBody(s.to_owned()))
    }
}

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// The body code is not one of the twelve.
    #[error("unknown body code {0:?}: expected one of ZJ FG SJ XF ZR GA NY WT XZ ZF JB SQ")]
    UnknownBody(String),
}
