//! Resource types in Security Hub's vocabulary (`AwsS3Bucket`), from the
//! CloudFormation-style names Access Analyzer and Config use
//! (`AWS::S3::Bucket`) and Inspector's (`AWS_EC2_INSTANCE`), so routing rules
//! and fingerprints see one name per kind of resource whichever source sent it.

/// `AWS::S3::Bucket` → `AwsS3Bucket`, `AWS::KMS::Key` → `AwsKmsKey`,
/// `AWS::EC2::SecurityGroup` → `AwsEc2SecurityGroup`. All-capital parts are
/// written as words (`KMS` → `Kms`); anything that is not an `AWS::` name is
/// kept as it is (bounded), so a hostile type cannot grow without limit.
pub(crate) fn from_cloudformation(t: &str) -> String {
    let t = t.trim();
    let Some(rest) = t.strip_prefix("AWS::") else {
        return crate::text::truncate(t, 64);
    };
    let mut out = String::from("Aws");
    for part in rest.split("::") {
        out.push_str(&word(part));
    }
    crate::text::truncate(&out, 64)
}

/// `AWS_EC2_INSTANCE` → `AwsEc2Instance`, `AWS_ECR_CONTAINER_IMAGE` →
/// `AwsEcrContainerImage`.
pub(crate) fn from_screaming(t: &str) -> String {
    let out: String = t.trim().split('_').map(word).collect();
    crate::text::truncate(&out, 64)
}

/// One part as a word: `KMS` → `Kms`, `SecurityGroup` stays, junk dropped.
fn word(part: &str) -> String {
    let clean: String = part.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    if clean.chars().all(|c| !c.is_ascii_lowercase()) {
        let mut chars = clean.chars();
        match chars.next() {
            Some(first) => first.to_string() + &chars.as_str().to_ascii_lowercase(),
            None => String::new(),
        }
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_security_hub() {
        assert_eq!(from_cloudformation("AWS::S3::Bucket"), "AwsS3Bucket");
        assert_eq!(from_cloudformation("AWS::KMS::Key"), "AwsKmsKey");
        assert_eq!(from_cloudformation("AWS::IAM::Role"), "AwsIamRole");
        assert_eq!(
            from_cloudformation("AWS::EC2::SecurityGroup"),
            "AwsEc2SecurityGroup"
        );
        assert_eq!(from_cloudformation("Custom::Thing"), "Custom::Thing");
        assert_eq!(from_screaming("AWS_EC2_INSTANCE"), "AwsEc2Instance");
        assert_eq!(
            from_screaming("AWS_ECR_CONTAINER_IMAGE"),
            "AwsEcrContainerImage"
        );
        assert_eq!(from_cloudformation("AWS::<b>::x"), "Awsbx");
    }
}
