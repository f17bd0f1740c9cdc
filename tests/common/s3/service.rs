//! The S3 service: s3s-fs behind a wrapper that counts GetObject and HeadObject requests,
//! records their ranges, evaluates conditional headers ([`super::conditions`]) and answers
//! over-long suffix ranges as S3 does; every other operation goes straight to s3s-fs.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, S3};
use s3s_fs::FileSystem;

use super::conditions::Conditions;
use super::Counters;

/// s3s-fs plus request counting and conditional GET/HEAD.
pub(super) struct Storage {
    pub(super) fs: FileSystem,
    pub(super) counters: Arc<Counters>,
}

#[async_trait::async_trait]
impl S3 for Storage {
    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        self.counters.get.fetch_add(1, Ordering::SeqCst);
        let range = req.input.range.as_ref().map(|r| match r {
            Range::Int { first, last } => match last {
                Some(last) => format!("bytes={first}-{last}"),
                None => format!("bytes={first}-"),
            },
            Range::Suffix { length } => format!("bytes=-{length}"),
        });
        self.counters.ranges.lock().unwrap().push(range);
        let conditions = Conditions::of_get(&req.input);
        if !conditions.is_empty() {
            // Evaluated before the range, as S3 does.
            let head = HeadObjectInput {
                bucket: req.input.bucket.clone(),
                key: req.input.key.clone(),
                ..Default::default()
            };
            let current = self.fs.head_object(req.clone().map_input(|_| head)).await?;
            conditions.check(
                current.output.e_tag.as_ref(),
                current.output.last_modified.as_ref(),
            )?;
        }
        let mut req = req;
        if let Some(Range::Suffix { length }) = req.input.range {
            // S3 (and RFC 9110) answer a suffix longer than the object with the whole object;
            // s3s-fs 0.14 fails with 500 instead. Ask it for the equivalent bounded range.
            let head = HeadObjectInput {
                bucket: req.input.bucket.clone(),
                key: req.input.key.clone(),
                ..Default::default()
            };
            let current = self.fs.head_object(req.clone().map_input(|_| head)).await?;
            let size = current.output.content_length.unwrap_or(0).max(0) as u64;
            if length > size && size > 0 {
                req.input.range = Some(Range::Int {
                    first: 0,
                    last: Some(size - 1),
                });
            }
        }
        self.fs.get_object(req).await
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        self.counters.head.fetch_add(1, Ordering::SeqCst);
        let conditions = Conditions::of_head(&req.input);
        let response = self.fs.head_object(req).await?;
        conditions.check(
            response.output.e_tag.as_ref(),
            response.output.last_modified.as_ref(),
        )?;
        Ok(response)
    }

    // Everything else goes straight to s3s-fs.

    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        self.fs.create_bucket(req).await
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        self.fs.copy_object(req).await
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        self.fs.delete_bucket(req).await
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        self.fs.delete_object(req).await
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        self.fs.delete_objects(req).await
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.fs.get_bucket_location(req).await
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.fs.head_bucket(req).await
    }

    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        self.fs.list_buckets(req).await
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        self.fs.list_objects(req).await
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        self.fs.list_objects_v2(req).await
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        self.fs.put_object(req).await
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        self.fs.create_multipart_upload(req).await
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        self.fs.upload_part(req).await
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        self.fs.upload_part_copy(req).await
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        self.fs.list_parts(req).await
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        self.fs.complete_multipart_upload(req).await
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        self.fs.abort_multipart_upload(req).await
    }
}
