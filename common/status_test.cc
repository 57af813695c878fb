#include <gtest/gtest.h>

#include "common/result.h"
#include "common/status.h"

namespace understudy {
namespace {

TEST(StatusTest, DefaultIsOkAndCarriesNoMessage) {
  Status status;
  EXPECT_TRUE(status.ok());
  EXPECT_EQ(status.code(), Status::Code::kOk);
  EXPECT_EQ(status.message(), "");
  EXPECT_EQ(status.ToString(), "OK");
}

TEST(StatusTest, ContextIsPrependedAndCodeKept) {
  Status status = Status::Corruption("checksum mismatch at offset 8192").WithContext("section 'ram'");
  EXPECT_EQ(status.code(), Status::Code::kCorruption);
  EXPECT_EQ(status.ToString(), "Corruption: section 'ram': checksum mismatch at offset 8192");
  EXPECT_TRUE(Status::Ok().WithContext("ignored").ok());
}

TEST(StatusTest, FromErrnoNamesTheCall) {
  Status status = Status::FromErrno("open /nope", ENOENT);
  EXPECT_EQ(status.code(), Status::Code::kIOError);
  EXPECT_EQ(status.message(), "open /nope: No such file or directory");
}

Result<int> Half(int value) {
  if (value % 2 != 0) return Status::InvalidArgument(std::to_string(value) + " is odd");
  return value / 2;
}

Status HalfTwice(int value, int* out) {
  UNDERSTUDY_ASSIGN_OR_RETURN(int half, Half(value));
  UNDERSTUDY_ASSIGN_OR_RETURN(*out, Half(half));
  return Status::Ok();
}

TEST(ResultTest, ValueOrStatusPropagates) {
  int out = 0;
  EXPECT_TRUE(HalfTwice(8, &out).ok());
  EXPECT_EQ(out, 2);
  Status failed = HalfTwice(6, &out);
  EXPECT_EQ(failed.code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(failed.message(), "3 is odd");
}

TEST(ResultTest, OkStatusWithoutValueBecomesInternalError) {
  Result<int> result(Status::Ok());
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), Status::Code::kInternal);
}

}  // namespace
}  // namespace understudy
