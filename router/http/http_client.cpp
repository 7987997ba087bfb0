#include "router/http/http_client.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

namespace conduit::http {
namespace {

// A misbehaving server could send headers without end; beyond this many they are dropped.
constexpr std::size_t kMaxResponseHeaders = 256;

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) ==
           std::tolower(static_cast<unsigned char>(y));
  });
}

std::string_view TrimWhitespace(std::string_view text) {
  const auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!text.empty() && is_space(text.front())) {
    text.remove_prefix(1);
  }
  while (!text.empty() && is_space(text.back())) {
    text.remove_suffix(1);
  }
  return text;
}

std::uint64_t PieceLength(const BodyPiece& piece) {
  if (const auto* text = std::get_if<std::string>(&piece)) {
    return text->size();
  }
  if (const auto* slice = std::get_if<FileSlice>(&piece)) {
    return slice->length;
  }
  return std::get<std::span<const std::uint8_t>>(piece).size();
}

// scheme://host:port of a URL, for error details: enough to tell which server failed, without
// the path and query (long, maybe signed) or user information (maybe a password).
std::string HostOf(std::string_view url) {
  const std::size_t scheme_end = url.find("://");
  const std::size_t authority_begin = scheme_end == std::string_view::npos ? 0 : scheme_end + 3;
  std::size_t authority_end = url.find_first_of("/?#", authority_begin);
  if (authority_end == std::string_view::npos) {
    authority_end = url.size();
  }
  std::string_view authority = url.substr(authority_begin, authority_end - authority_begin);
  if (const std::size_t at = authority.rfind('@'); at != std::string_view::npos) {
    authority.remove_prefix(at + 1);
  }
  return std::string(url.substr(0, authority_begin)) + std::string(authority);
}

// Feeds the request body to libcurl as it asks for it, reading file slices in chunks, so that a
// large upload never sits in memory.
class BodyReader {
 public:
  explicit BodyReader(const Body& body) : body_(body) {}
  ~BodyReader() { CloseFile(); }
  BodyReader(const BodyReader&) = delete;
  BodyReader& operator=(const BodyReader&) = delete;

  // Fills up to `capacity` bytes; 0 at the end of the body, CURL_READFUNC_ABORT when a file
  // cannot be read (failure() then says why).
  std::size_t Read(char* buffer, std::size_t capacity) {
    std::size_t filled = 0;
    while (filled < capacity && piece_ < body_.size()) {
      const BodyPiece& piece = body_[piece_];
      const std::uint64_t left_in_piece = PieceLength(piece) - offset_in_piece_;
      if (left_in_piece == 0) {
        CloseFile();
        ++piece_;
        offset_in_piece_ = 0;
        continue;
      }
      const std::size_t wanted =
          static_cast<std::size_t>(std::min<std::uint64_t>(capacity - filled, left_in_piece));
      if (const auto* text = std::get_if<std::string>(&piece)) {
        std::memcpy(buffer + filled, text->data() + offset_in_piece_, wanted);
      } else if (const auto* bytes = std::get_if<std::span<const std::uint8_t>>(&piece)) {
        std::memcpy(buffer + filled, bytes->data() + offset_in_piece_, wanted);
      } else if (!ReadFile(std::get<FileSlice>(piece), buffer + filled, wanted)) {
        return CURL_READFUNC_ABORT;
      }
      filled += wanted;
      offset_in_piece_ += wanted;
    }
    return filled;
  }

  // libcurl rewinds the body when it must send the request again, e.g. when a kept-alive
  // connection turns out to have been closed by the server after the first bytes went out.
  bool Seek(std::uint64_t position) {
    CloseFile();
    piece_ = 0;
    offset_in_piece_ = 0;
    while (piece_ < body_.size() && position >= PieceLength(body_[piece_])) {
      position -= PieceLength(body_[piece_]);
      ++piece_;
    }
    offset_in_piece_ = position;
    return piece_ < body_.size() || position == 0;
  }

  const std::optional<std::string>& failure() const { return failure_; }

 private:
  // Reads exactly `length` bytes of the slice at the current offset.
  bool ReadFile(const FileSlice& slice, char* buffer, std::size_t length) {
    if (file_ < 0) {
      file_ = ::open(slice.file.c_str(), O_RDONLY | O_CLOEXEC);
      if (file_ < 0) {
        failure_ = "cannot open " + slice.file.string() + ": " + std::strerror(errno);
        return false;
      }
    }
    std::size_t done = 0;
    while (done < length) {
      const ssize_t got = ::pread(file_, buffer + done, length - done,
                                  static_cast<off_t>(slice.offset + offset_in_piece_ + done));
      if (got < 0 && errno == EINTR) {
        continue;
      }
      if (got < 0) {
        failure_ = "cannot read " + slice.file.string() + ": " + std::strerror(errno);
        return false;
      }
      if (got == 0) {
        failure_ = slice.file.string() + " ends before byte " +
                   std::to_string(slice.offset + slice.length) + " (truncated since queued?)";
        return false;
      }
      done += static_cast<std::size_t>(got);
    }
    return true;
  }

  void CloseFile() {
    if (file_ >= 0) {
      ::close(file_);
      file_ = -1;
    }
  }

  const Body& body_;
  std::size_t piece_ = 0;
  std::uint64_t offset_in_piece_ = 0;
  int file_ = -1;  // open file of the current piece when it is a FileSlice
  std::optional<std::string> failure_;
};

// The state of one Perform that libcurl's callbacks reach through their user pointer.
struct Transfer {
  Transfer(const Body& body, const ClientOptions& options)
      : reader(body), max_response_bytes(options.max_response_bytes), cancel(options.cancel) {}

  static std::size_t OnRead(char* buffer, std::size_t size, std::size_t count, void* self) {
    return static_cast<Transfer*>(self)->reader.Read(buffer, size * count);
  }

  static int OnSeek(void* self, curl_off_t offset, int origin) {
    if (origin != SEEK_SET || offset < 0) {
      return CURL_SEEKFUNC_CANTSEEK;
    }
    return static_cast<Transfer*>(self)->reader.Seek(static_cast<std::uint64_t>(offset))
               ? CURL_SEEKFUNC_OK
               : CURL_SEEKFUNC_FAIL;
  }

  static std::size_t OnHeader(char* data, std::size_t size, std::size_t count, void* self) {
    static_cast<Transfer*>(self)->AddHeaderLine(std::string_view(data, size * count));
    return size * count;
  }

  static std::size_t OnBody(char* data, std::size_t size, std::size_t count, void* self) {
    auto& transfer = *static_cast<Transfer*>(self);
    std::string& body = transfer.response.body;
    const std::size_t room = transfer.max_response_bytes - body.size();
    body.append(data, std::min(room, size * count));
    // Everything is consumed, kept or not, so that the connection stays usable.
    return size * count;
  }

  static int OnProgress(void* self, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    auto& transfer = *static_cast<Transfer*>(self);
    transfer.cancelled = transfer.cancel->load(std::memory_order_relaxed);
    return transfer.cancelled ? 1 : 0;
  }

  void AddHeaderLine(std::string_view line) {
    // A status line starts a new response (after a 100 Continue, say): only the last one's
    // headers are the answer.
    if (line.starts_with("HTTP/")) {
      response.headers.clear();
      return;
    }
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || response.headers.size() >= kMaxResponseHeaders) {
      return;
    }
    std::string name(TrimWhitespace(line.substr(0, colon)));
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    response.headers.emplace_back(std::move(name), TrimWhitespace(line.substr(colon + 1)));
  }

  BodyReader reader;
  HttpResponse response;
  std::size_t max_response_bytes;
  const std::atomic<bool>* cancel;
  bool cancelled = false;
};

struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using HeaderList = std::unique_ptr<curl_slist, SlistDeleter>;

// Each header as given, plus two removals of what libcurl would add on its own: "Expect:"
// (100-continue costs a round trip per upload and some servers mishandle it) and, for a POST,
// its default form Content-Type when the caller set none.
Result<HeaderList, std::string> BuildHeaderList(const HttpRequest& request) {
  HeaderList list;
  const auto append = [&list](const std::string& line) {
    // On success the head stays the same but for the first line, which creates the list.
    curl_slist* head = curl_slist_append(list.get(), line.c_str());
    if (head == nullptr) {
      return false;
    }
    static_cast<void>(list.release());
    list.reset(head);
    return true;
  };
  bool has_content_type = false;
  for (const auto& [name, value] : request.headers) {
    // A line break would let a value (a token read from a file, say) smuggle in more headers.
    if (name.find_first_of("\r\n:") != std::string::npos ||
        value.find_first_of("\r\n") != std::string::npos) {
      return "header " + name + " contains a line break or colon";
    }
    has_content_type = has_content_type || EqualsIgnoringCase(name, "content-type");
    // "Name;" is libcurl's way to send a header with an empty value ("Name:" removes it).
    std::string line = name;
    line += value.empty() ? ";" : ": ";
    line += value;
    if (!append(line)) {
      return std::string("out of memory");
    }
  }
  if (!append("Expect:") ||
      (request.method == "POST" && !has_content_type && !append("Content-Type:"))) {
    return std::string("out of memory");
  }
  return list;
}

// Checked before connecting so that an unsendable item fails without a half-sent request (and
// without spoiling a kept-alive connection); a file that shrinks later is caught while reading.
std::optional<std::string> FindUnreadableFile(const Body& body) {
  for (const BodyPiece& piece : body) {
    const auto* slice = std::get_if<FileSlice>(&piece);
    if (slice == nullptr) {
      continue;
    }
    std::error_code error;
    const std::uint64_t size = std::filesystem::file_size(slice->file, error);
    if (error) {
      return "cannot read " + slice->file.string() + ": " + error.message();
    }
    if (size < slice->offset + slice->length) {
      return slice->file.string() + " has " + std::to_string(size) + " bytes, the body needs " +
             std::to_string(slice->offset + slice->length);
    }
  }
  return std::nullopt;
}

HttpFailure Classify(CURLcode code, const Transfer& transfer) {
  // Both our read callback and our progress callback make libcurl stop with
  // CURLE_ABORTED_BY_CALLBACK: the transfer's own flags tell which one it was.
  if (transfer.reader.failure() || code == CURLE_READ_ERROR) {
    return HttpFailure::kBody;
  }
  if (transfer.cancelled) {
    return HttpFailure::kCancelled;
  }
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
      return HttpFailure::kConnect;
    case CURLE_OPERATION_TIMEDOUT:
      return HttpFailure::kTimeout;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED:
      return HttpFailure::kTls;
    case CURLE_ABORTED_BY_CALLBACK:
      return HttpFailure::kCancelled;
    default:
      return HttpFailure::kOther;
  }
}

}  // namespace

struct HttpClient::Handle {
  Handle() {
    // curl_global_init must run once before any handle and is not thread-safe itself; a
    // function-local static runs it exactly once, whichever worker thread comes first.
    static const CURLcode global_init = curl_global_init(CURL_GLOBAL_DEFAULT);
    easy = global_init == CURLE_OK ? curl_easy_init() : nullptr;
    if (easy == nullptr) {
      throw std::runtime_error("libcurl could not be initialised");
    }
  }
  ~Handle() { curl_easy_cleanup(easy); }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  CURL* easy = nullptr;
  char error_buffer[CURL_ERROR_SIZE] = {};
};

HttpClient::HttpClient(ClientOptions options)
    : options_(std::move(options)), handle_(std::make_unique<Handle>()) {}

HttpClient::~HttpClient() = default;

Result<HttpResponse, HttpError> HttpClient::Perform(const HttpRequest& request) {
  last_bytes_sent_ = 0;
  const std::string where = request.method + " " + HostOf(request.url);
  if (auto unreadable = FindUnreadableFile(request.body)) {
    return HttpError{HttpFailure::kBody, where + ": " + *unreadable};
  }
  auto headers = BuildHeaderList(request);
  if (!headers) {
    return HttpError{HttpFailure::kOther, where + ": " + headers.error()};
  }

  CURL* easy = handle_->easy;
  // The previous request's options (method, sizes, callbacks' user pointers) must not leak into
  // this one; a reset keeps the open connections, so keep-alive survives it.
  curl_easy_reset(easy);
  Transfer transfer(request.body, options_);
  handle_->error_buffer[0] = '\0';
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, handle_->error_buffer);
  curl_easy_setopt(easy, CURLOPT_URL, request.url.c_str());
  // The path goes as given: libcurl would otherwise squash "/./" and "/../", and a signed
  // request (S3) would no longer match its signature, or land under another key.
  curl_easy_setopt(easy, CURLOPT_PATH_AS_IS, 1L);
  curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  // Worker threads: libcurl must not use signals (SIGALRM) for its DNS timeouts.
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout.count()));
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.request_timeout.count()));
  curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, options_.tls.verify ? 1L : 0L);
  curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, options_.tls.verify ? 2L : 0L);
  if (!options_.tls.ca_file.empty()) {
    curl_easy_setopt(easy, CURLOPT_CAINFO, options_.tls.ca_file.c_str());
    // Instead of the system's CAs, not in addition: libcurl's default CA directory
    // (/etc/ssl/certs) would otherwise still be trusted.
    curl_easy_setopt(easy, CURLOPT_CAPATH, nullptr);
  }
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers->get());

  // Content-Length always comes from the body's known size: never chunked, which some DICOMweb
  // servers and S3 refuse. GET and HEAD send no body.
  const auto body_length = static_cast<curl_off_t>(BodyLength(request.body));
  if (request.method == "GET") {
    curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
  } else if (request.method == "HEAD") {
    curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
  } else if (request.method == "POST") {
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, body_length);
  } else if (request.method == "PUT") {
    curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(easy, CURLOPT_INFILESIZE_LARGE, body_length);
  } else {
    curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    if (!request.body.empty()) {
      curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(easy, CURLOPT_INFILESIZE_LARGE, body_length);
    }
  }
  curl_easy_setopt(easy, CURLOPT_READFUNCTION, &Transfer::OnRead);
  curl_easy_setopt(easy, CURLOPT_READDATA, &transfer);
  curl_easy_setopt(easy, CURLOPT_SEEKFUNCTION, &Transfer::OnSeek);
  curl_easy_setopt(easy, CURLOPT_SEEKDATA, &transfer);
  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &Transfer::OnHeader);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, &transfer);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &Transfer::OnBody);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &transfer);
  if (options_.cancel != nullptr) {
    curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, &Transfer::OnProgress);
    curl_easy_setopt(easy, CURLOPT_XFERINFODATA, &transfer);
  }

  const CURLcode code = curl_easy_perform(easy);
  curl_off_t uploaded = 0;
  curl_easy_getinfo(easy, CURLINFO_SIZE_UPLOAD_T, &uploaded);
  last_bytes_sent_ = static_cast<std::uint64_t>(uploaded);
  if (code != CURLE_OK) {
    const HttpFailure kind = Classify(code, transfer);
    std::string detail = where + ": ";
    if (transfer.reader.failure()) {
      detail += *transfer.reader.failure();
    } else {
      detail += curl_easy_strerror(code);
      if (handle_->error_buffer[0] != '\0') {
        detail += std::string(" (") + handle_->error_buffer + ")";
      }
    }
    return HttpError{kind, std::move(detail)};
  }
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &transfer.response.status);
  return std::move(transfer.response);
}

std::uint64_t BodyLength(const Body& body) {
  std::uint64_t length = 0;
  for (const BodyPiece& piece : body) {
    length += PieceLength(piece);
  }
  return length;
}

std::optional<std::string> HttpResponse::Header(std::string_view lower_case_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_case_name) {
      return value;
    }
  }
  return std::nullopt;
}

const char* HttpFailureName(HttpFailure failure) {
  switch (failure) {
    case HttpFailure::kConnect:
      return "connect";
    case HttpFailure::kTls:
      return "tls";
    case HttpFailure::kTimeout:
      return "timeout";
    case HttpFailure::kCancelled:
      return "cancelled";
    case HttpFailure::kBody:
      return "body";
    case HttpFailure::kOther:
      return "other";
  }
  return "other";
}

std::string PercentEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string encoded;
  encoded.reserve(text.size());
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    // RFC 3986 2.3: unreserved characters are never encoded (ASCII only, whatever the locale).
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      encoded.push_back(c);
    } else {
      encoded.push_back('%');
      encoded.push_back(kHex[byte >> 4]);
      encoded.push_back(kHex[byte & 0x0F]);
    }
  }
  return encoded;
}

}  // namespace conduit::http
