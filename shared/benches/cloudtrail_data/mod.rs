//! Realistic CloudTrail log files, generated in memory for the benchmarks
//! (and by `cargo run --example cloudtrail_log` for `scripts/bench.sh`).
//!
//! The mix follows what an organization trail records: mostly machine
//! traffic (role assumptions, S3 object reads and writes, KMS decrypts,
//! describes), a trickle of console sign-ins and IAM changes, and very rare
//! tampering (StopLogging, DeleteTrail). Records carry the fields real ones
//! do (user identity with session context, user agent, TLS details, request
//! and response elements, resources), about 1.3 KB each on average.
//! Deterministic: the same seed gives the same bytes.

#![allow(dead_code)]

use serde_json::{json, Value};

/// `(eventSource, eventName, weight per 100 000 records)`.
const MIX: &[(&str, &str, u32)] = &[
    ("sts.amazonaws.com", "AssumeRole", 18_000),
    ("s3.amazonaws.com", "GetObject", 16_000),
    ("kms.amazonaws.com", "Decrypt", 12_000),
    ("ec2.amazonaws.com", "DescribeInstances", 8_000),
    ("s3.amazonaws.com", "PutObject", 6_000),
    ("kms.amazonaws.com", "GenerateDataKey", 5_000),
    ("sts.amazonaws.com", "GetCallerIdentity", 5_000),
    ("logs.amazonaws.com", "CreateLogStream", 4_000),
    ("ec2.amazonaws.com", "DescribeSecurityGroups", 4_000),
    ("s3.amazonaws.com", "GetBucketAcl", 3_000),
    ("ssm.amazonaws.com", "GetParameter", 3_000),
    ("ec2.amazonaws.com", "DescribeVolumes", 3_000),
    ("lambda.amazonaws.com", "Invoke", 2_500),
    ("dynamodb.amazonaws.com", "DescribeTable", 2_000),
    ("s3.amazonaws.com", "ListBuckets", 1_500),
    ("iam.amazonaws.com", "GetRole", 1_500),
    ("secretsmanager.amazonaws.com", "GetSecretValue", 1_000),
    ("sts.amazonaws.com", "AssumeRoleWithWebIdentity", 1_000),
    ("ec2.amazonaws.com", "RunInstances", 400),
    ("signin.amazonaws.com", "ConsoleLogin", 500),
    ("iam.amazonaws.com", "ListAttachedRolePolicies", 800),
    ("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress", 100),
    ("iam.amazonaws.com", "AttachRolePolicy", 80),
    ("iam.amazonaws.com", "PutRolePolicy", 40),
    ("iam.amazonaws.com", "CreateUser", 30),
    ("iam.amazonaws.com", "CreateAccessKey", 30),
    ("s3.amazonaws.com", "PutBucketPolicy", 30),
    ("iam.amazonaws.com", "UpdateAssumeRolePolicy", 10),
    ("kms.amazonaws.com", "ScheduleKeyDeletion", 5),
    ("cloudtrail.amazonaws.com", "StopLogging", 3),
    ("cloudtrail.amazonaws.com", "DeleteTrail", 2),
    ("guardduty.amazonaws.com", "DeleteDetector", 2),
];

const ACCOUNTS: [&str; 6] = [
    "111122223333",
    "222233334444",
    "333344445555",
    "444455556666",
    "555566667777",
    "666677778888",
];
const REGIONS: [&str; 4] = ["us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2"];
const ROLES: [&str; 6] = [
    "app-backend",
    "ci-deployer",
    "data-pipeline",
    "AWSReservedSSO_AdministratorAccess_5e1d2f3a4b5c6d7e",
    "eks-node-group",
    "lambda-exec-orders",
];
const AGENTS: [&str; 5] = [
    "aws-sdk-java/2.25.60 Linux/5.10.219-208.866.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/17.0.11+9-LTS Java/17.0.11",
    "Boto3/1.34.120 md/Botocore#1.34.120 ua/2.0 os/linux#5.10.216 md/arch#x86_64 lang/python#3.12.3",
    "aws-cli/2.15.58 md/awscrt#0.19.19 ua/2.0 os/macos#23.5.0 md/arch#arm64 lang/python#3.11.9",
    "terraform-provider-aws/5.52.0 aws-sdk-go-v2/1.27.1 os/linux lang/go#1.22.3 api/ec2#1.162.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0",
];

/// A deterministic record generator (SplitMix64).
pub struct Generator {
    state: u64,
    total_weight: u32,
    seq: u64,
}

impl Generator {
    pub fn new(seed: u64) -> Generator {
        Generator {
            state: seed,
            total_weight: MIX.iter().map(|m| m.2).sum(),
            seq: 0,
        }
    }

    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }

    fn hex(&mut self, len: usize) -> String {
        let mut s = String::with_capacity(len);
        while s.len() < len {
            s.push_str(&format!("{:016x}", self.next()));
        }
        s.truncate(len);
        s
    }

    fn upper(&mut self, len: usize) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        (0..len)
            .map(|_| A[self.below(A.len() as u64) as usize] as char)
            .collect()
    }

    fn uuid(&mut self) -> String {
        let h = self.hex(32);
        format!(
            "{}-{}-4{}-a{}-{}",
            &h[0..8],
            &h[8..12],
            &h[13..16],
            &h[17..20],
            &h[20..32]
        )
    }

    /// The next record.
    pub fn record(&mut self) -> Value {
        self.seq += 1;
        let mut roll = self.below(self.total_weight as u64) as u32;
        let (source, name) = MIX
            .iter()
            .find(|(_, _, w)| {
                if roll < *w {
                    true
                } else {
                    roll -= w;
                    false
                }
            })
            .map(|(s, n, _)| (*s, *n))
            .unwrap_or((MIX[0].0, MIX[0].1));
        self.build(source, name)
    }

    fn identity(&mut self, account: &str, console: bool) -> Value {
        let roll = self.below(1000);
        if console || roll < 60 {
            let user = self.pick(&["alice", "bob", "carol", "dave", "break-glass"]);
            return json!({"type": "IAMUser", "principalId": format!("AIDA{}", self.upper(17)),
                "arn": format!("arn:aws:iam::{account}:user/{user}"), "accountId": account,
                "accessKeyId": format!("AKIA{}", self.upper(16)), "userName": user});
        }
        if roll < 140 {
            return json!({"type": "AWSService", "invokedBy": self.pick(&["lambda.amazonaws.com",
                "ec2.amazonaws.com", "cloudformation.amazonaws.com", "config.amazonaws.com"])});
        }
        let role = self.pick(&ROLES);
        let session = format!("{}-{}", role.split('_').next().unwrap_or(role), self.hex(8));
        let role_id = format!("AROA{}", self.upper(17));
        json!({"type": "AssumedRole", "principalId": format!("{role_id}:{session}"),
            "arn": format!("arn:aws:sts::{account}:assumed-role/{role}/{session}"),
            "accountId": account, "accessKeyId": format!("ASIA{}", self.upper(16)),
            "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": role_id,
                "arn": format!("arn:aws:iam::{account}:role/{role}"), "accountId": account, "userName": role},
                "webIdFederationData": {},
                "attributes": {"creationDate": "2024-05-01T09:12:44Z",
                    "mfaAuthenticated": if role.starts_with("AWSReserved") { "true" } else { "false" }}}})
    }

    fn build(&mut self, source: &str, name: &str) -> Value {
        let account = self.pick(&ACCOUNTS);
        let region = if source == "iam.amazonaws.com" || source == "signin.amazonaws.com" {
            "us-east-1"
        } else {
            self.pick(&REGIONS)
        };
        let console = name == "ConsoleLogin";
        let identity = self.identity(account, console);
        let secs = (self.seq / 7) % 3600;
        let time = format!("2024-05-01T10:{:02}:{:02}Z", secs / 60, secs % 60);
        let private_ip = format!(
            "10.{}.{}.{}",
            self.below(256),
            self.below(256),
            self.below(254) + 1
        );
        let ip = match identity["type"].as_str() {
            Some("AWSService") => identity["invokedBy"].clone(),
            _ if console || self.below(10) == 0 => {
                json!(format!("203.0.113.{}", self.below(254) + 1))
            }
            _ => json!(private_ip),
        };
        let agent = if console {
            AGENTS[4].to_string()
        } else {
            self.pick(&AGENTS[..4]).to_string()
        };
        let read_only = name.starts_with("Get")
            || name.starts_with("Describe")
            || name.starts_with("List")
            || name == "Decrypt";
        let bucket = format!(
            "{}-{}",
            self.pick(&["orders-data", "app-assets", "ml-features", "logs-archive"]),
            account
        );
        let key_arn = format!("arn:aws:kms:{region}:{account}:key/{}", self.uuid());
        let instance = format!("i-0{}", self.hex(16));
        let (request, response, resources, extra): (Value, Value, Value, Value) = match name {
            "AssumeRole" | "AssumeRoleWithWebIdentity" => {
                let role = self.pick(&ROLES);
                (
                    json!({"roleArn": format!("arn:aws:iam::{account}:role/{role}"),
                        "roleSessionName": format!("session-{}", self.hex(12)), "durationSeconds": 3600}),
                    json!({"credentials": {"accessKeyId": format!("ASIA{}", self.upper(16)),
                        "sessionToken": format!("IQoJb3JpZ2luX2VjE{}", self.hex(24)),
                        "expiration": "May 1, 2024, 11:00:00 AM"},
                        "assumedRoleUser": {"assumedRoleId": format!("AROA{}:session", self.upper(17)),
                        "arn": format!("arn:aws:sts::{account}:assumed-role/{role}/session")}}),
                    json!([{"accountId": account, "type": "AWS::IAM::Role",
                        "ARN": format!("arn:aws:iam::{account}:role/{role}")}]),
                    Value::Null,
                )
            }
            "GetObject" | "PutObject" => {
                let key = format!(
                    "{}/2024/05/01/part-{:05}.parquet",
                    self.pick(&["raw", "curated", "exports"]),
                    self.below(99999)
                );
                (
                    json!({"bucketName": bucket, "Host": format!("{bucket}.s3.{region}.amazonaws.com"), "key": key,
                        "x-id": name}),
                    if name == "PutObject" {
                        json!({"x-amz-server-side-encryption": "aws:kms", "x-amz-server-side-encryption-aws-kms-key-id": key_arn})
                    } else {
                        Value::Null
                    },
                    json!([{"type": "AWS::S3::Object", "ARN": format!("arn:aws:s3:::{bucket}/{key}")},
                        {"accountId": account, "type": "AWS::S3::Bucket", "ARN": format!("arn:aws:s3:::{bucket}")}]),
                    json!({"SignatureVersion": "SigV4", "bytesTransferredIn": 0,
                        "AuthenticationMethod": "AuthHeader", "bytesTransferredOut": self.below(5_000_000)}),
                )
            }
            "Decrypt" | "GenerateDataKey" => (
                json!({"encryptionAlgorithm": "SYMMETRIC_DEFAULT", "keyId": key_arn}),
                Value::Null,
                json!([{"accountId": account, "type": "AWS::KMS::Key", "ARN": key_arn}]),
                Value::Null,
            ),
            "DescribeInstances" | "RunInstances" => (
                json!({"instancesSet": {"items": [{"instanceId": instance}]}, "filterSet": {},
                    "includeAllResources": false}),
                if name == "RunInstances" {
                    json!({"instancesSet": {"items": [{"instanceId": instance, "imageId": format!("ami-0{}", self.hex(16)),
                        "instanceType": "m6i.large", "privateIpAddress": private_ip}]}})
                } else {
                    Value::Null
                },
                Value::Null,
                Value::Null,
            ),
            "ConsoleLogin" => {
                let ok = self.below(20) != 0;
                (
                    Value::Null,
                    json!({"ConsoleLogin": if ok { "Success" } else { "Failure" }}),
                    Value::Null,
                    json!({"LoginTo": "https://console.aws.amazon.com/console/home", "MobileVersion": "No",
                        "MFAUsed": if self.below(10) == 0 { "No" } else { "Yes" }}),
                )
            }
            "CreateUser" | "CreateAccessKey" => {
                let user = format!("svc-{}", self.hex(6));
                (
                    json!({"userName": user}),
                    json!({"user": {"userName": user, "path": "/", "userId": format!("AIDA{}", self.upper(17)),
                        "arn": format!("arn:aws:iam::{account}:user/{user}"), "createDate": "May 1, 2024, 10:00:00 AM"}}),
                    Value::Null,
                    Value::Null,
                )
            }
            "AttachRolePolicy" | "PutRolePolicy" | "UpdateAssumeRolePolicy" => (
                json!({"roleName": self.pick(&ROLES), "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}),
                Value::Null,
                Value::Null,
                Value::Null,
            ),
            "StopLogging" | "DeleteTrail" => (
                json!({"name": format!("arn:aws:cloudtrail:us-east-1:{account}:trail/org-trail")}),
                Value::Null,
                Value::Null,
                Value::Null,
            ),
            "AuthorizeSecurityGroupIngress" => (
                json!({"groupId": format!("sg-0{}", self.hex(16)), "ipPermissions": {"items": [{"ipProtocol": "tcp",
                    "fromPort": 22, "toPort": 22, "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]}}),
                json!({"_return": true}),
                Value::Null,
                Value::Null,
            ),
            "PutBucketPolicy" | "GetBucketAcl" => (
                json!({"bucketName": bucket, "Host": format!("{bucket}.s3.amazonaws.com"),
                    if name == "GetBucketAcl" { "acl" } else { "policy" }: ""}),
                Value::Null,
                json!([{"accountId": account, "type": "AWS::S3::Bucket", "ARN": format!("arn:aws:s3:::{bucket}")}]),
                Value::Null,
            ),
            _ => (
                json!({"name": format!("/{}/{}", self.pick(&["prod", "staging"]), self.hex(10)),
                    "withDecryption": true, "maxResults": 50}),
                Value::Null,
                Value::Null,
                Value::Null,
            ),
        };
        let denied = read_only && self.below(100) == 0;
        let mut r = json!({
            "eventVersion": "1.09",
            "userIdentity": identity,
            "eventTime": time,
            "eventSource": source,
            "eventName": name,
            "awsRegion": region,
            "sourceIPAddress": ip,
            "userAgent": agent,
            "requestParameters": request,
            "responseElements": response,
            "requestID": self.uuid(),
            "eventID": self.uuid(),
            "readOnly": read_only,
            "eventType": if console { "AwsConsoleSignIn" } else { "AwsApiCall" },
            "managementEvent": !matches!(name, "GetObject" | "PutObject" | "Invoke"),
            "recipientAccountId": account,
            "eventCategory": if matches!(name, "GetObject" | "PutObject" | "Invoke") { "Data" } else { "Management" },
            "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                "clientProvidedHostHeader": format!("{}.{region}.amazonaws.com", source.split('.').next().unwrap_or("sts"))},
        });
        let obj = r.as_object_mut().expect("built as an object");
        if !resources.is_null() {
            obj.insert("resources".into(), resources);
        }
        if !extra.is_null() {
            obj.insert("additionalEventData".into(), extra);
        }
        if denied {
            obj.insert("errorCode".into(), json!("AccessDenied"));
            obj.insert(
                "errorMessage".into(),
                json!(format!(
                    "User is not authorized to perform: {}:{name}",
                    source.split('.').next().unwrap_or("")
                )),
            );
        }
        if console {
            obj.remove("requestID");
            obj.remove("tlsDetails");
        }
        r
    }
}

/// `count` records.
pub fn records(seed: u64, count: usize) -> Vec<Value> {
    let mut g = Generator::new(seed);
    (0..count).map(|_| g.record()).collect()
}

/// A CloudTrail log file body (`{"Records":[...]}`, uncompressed) of `count` records.
pub fn log_file(seed: u64, count: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(count * 1400);
    out.extend_from_slice(b"{\"Records\":[");
    let mut g = Generator::new(seed);
    for i in 0..count {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut out, &g.record()).expect("a Value serializes");
    }
    out.extend_from_slice(b"]}");
    out
}

/// Which records a benchmark runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mix {
    /// The generator's organization-trail mix.
    Default,
    /// Only its read-only calls (`readOnly: true`): what most of a trail is.
    ReadOnly,
    /// Only records some bundled rule matches (a pool of distinct ones,
    /// repeated): the worst case for the pipeline.
    AllMatching,
}

impl Mix {
    pub const ALL: [Mix; 3] = [Mix::Default, Mix::ReadOnly, Mix::AllMatching];

    pub fn name(self) -> &'static str {
        match self {
            Mix::Default => "default",
            Mix::ReadOnly => "read-only",
            Mix::AllMatching => "all-matching",
        }
    }

    pub fn parse(s: &str) -> Option<Mix> {
        Mix::ALL.into_iter().find(|m| m.name() == s)
    }
}

/// Distinct records of the all-matching pool, at most.
const POOL: usize = 2_000;

/// `count` records of `mix`; `matches` tells which records some rule
/// matches (for [`Mix::AllMatching`]).
pub fn mix_records(
    seed: u64,
    count: usize,
    mix: Mix,
    matches: &dyn Fn(&Value) -> bool,
) -> Vec<Value> {
    let mut g = Generator::new(seed);
    let keep = |r: &Value| match mix {
        Mix::Default => true,
        Mix::ReadOnly => r["readOnly"] == json!(true),
        Mix::AllMatching => matches(r),
    };
    let want = match mix {
        Mix::AllMatching => count.min(POOL),
        _ => count,
    };
    let mut pool = Vec::with_capacity(want);
    // The generator's rarest matching records come once in thousands.
    for _ in 0..want.saturating_mul(200).max(1_000_000) {
        if pool.len() == want {
            break;
        }
        let r = g.record();
        if keep(&r) {
            pool.push(r);
        }
    }
    assert!(!pool.is_empty(), "no {} records generated", mix.name());
    pool.iter().cycle().take(count).cloned().collect()
}

/// A log file body (`{"Records":[...]}`) of `records`.
pub fn log_file_of(records: &[Value]) -> Vec<u8> {
    let mut out = Vec::with_capacity(records.len() * 1400);
    out.extend_from_slice(b"{\"Records\":[");
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut out, r).expect("a Value serializes");
    }
    out.extend_from_slice(b"]}");
    out
}
