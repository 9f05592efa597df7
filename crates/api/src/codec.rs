//! The protobuf codec of tousu's services (`build.rs` names it to tonic-build as
//! `codec_path`): prost's encoding and decoding, except that a request whose bytes do not
//! decode as the RPC's message is refused as the client's fault, `INVALID_ARGUMENT` with
//! reason `UNDECODABLE_MESSAGE` and the RPC's rule, where tonic's `ProstCodec` answers
//! `INTERNAL` as if the server had failed.
//!
//! The generated clients use the codec too. For them the message decoded is an answer, not a
//! request: an answer that does not decode is no fault of the client's, so it stays `INTERNAL`,
//! as prost's codec has it. Which of the two a message is, the table of RPCs says
//! (`crate::rules`: every request message names its RPC's rule, no answer does).

use std::marker::PhantomData;

use prost::Message;
use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder, ProstCodec};

use crate::rules::rule_of_request;
use crate::status::undecodable;

/// The codec: encodes `T`, decodes `U`.
#[derive(Debug, Clone)]
pub struct TousuCodec<T, U> {
    _messages: PhantomData<(T, U)>,
}

impl<T, U> Default for TousuCodec<T, U> {
    fn default() -> Self {
        TousuCodec { _messages: PhantomData }
    }
}

impl<T, U> Codec for TousuCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + prost::Name + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = <ProstCodec<T, U> as Codec>::Encoder;
    type Decoder = TousuDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        TousuDecoder { _message: PhantomData }
    }
}

/// Decodes `U` with prost, refusing a request that does not decode.
#[derive(Debug, Clone)]
pub struct TousuDecoder<U> {
    _message: PhantomData<U>,
}

impl<U: Message + prost::Name + Default> Decoder for TousuDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buffer: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buffer).map(Some).map_err(|error| match rule_of_request(U::NAME) {
            Some(rule) => undecodable(U::NAME, &error, Some(rule)),
            None => Status::internal(error.to_string()),
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}
