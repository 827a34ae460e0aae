# frozen_string_literal: true

# Test helpers: a real `skybridge serve` on 127.0.0.1 with a fresh data dir,
# and git repositories made from the repository's Go fixtures.

require "minitest/autorun"
require "fileutils"
require "open3"
require "socket"
require "tmpdir"
require "uri"
require "base64"
$LOAD_PATH.unshift File.expand_path("../lib", __dir__)
require "skybridge"

ROOT = File.expand_path("../..", __dir__)

def required_env(name)
  ENV.fetch(name) do
    raise "#{name} is not set: run these tests through `cargo test --test integration sdk_ruby` (scripts/test.sh does)"
  end
end

def free_port
  server = TCPServer.new("127.0.0.1", 0)
  server.addr[1]
ensure
  server&.close
end

# A `skybridge serve` process.
class TestServer
  attr_reader :url

  def initialize(env = {}, port: 0)
    @data_dir = Dir.mktmpdir("skybridge-ruby-test-")
    @env = env
    @port = port
  end

  def start
    env = {
      "PATH" => ENV.fetch("PATH", "/usr/bin:/bin"),
      "HOME" => ENV.fetch("HOME", "/root"),
      "SKYBRIDGE_SERVER_LISTEN" => "127.0.0.1:#{@port}",
      "SKYBRIDGE_SERVER_DATA_DIR" => @data_dir,
      "SKYBRIDGE_LOG" => "warn",
      "SKYBRIDGE_GO_BINARY" => required_env("SKYBRIDGE_GO"),
      "SKYBRIDGE_GO_CACHE_DIR" => File.join(ROOT, "target", "go-cache")
    }.merge(@env)
    stdin, @stdout, @wait = Open3.popen2(env, required_env("SKYBRIDGE_BIN"), "serve", unsetenv_others: true)
    stdin.close
    line = @stdout.gets
    m = line && %r{\Askybridge listening on (http://\S+)}.match(line)
    unless m
      kill
      raise "skybridge did not start (first line: #{line.inspect})"
    end
    @url = m[1]
    @port = URI(@url).port
    self
  end

  def kill(signal = "KILL")
    return unless @wait

    Process.kill(signal, @wait.pid)
    @wait.value
    @stdout.close
    @wait = nil
  end

  # SIGTERM and wait for the clean shutdown (SIGKILL after 20 s).
  def stop
    return unless @wait

    Process.kill("TERM", @wait.pid)
    return kill if @wait.join(20).nil?

    @stdout.close
    @wait = nil
  end

  def restart(extra_env = {})
    stop
    @env = @env.merge(extra_env)
    start
  end

  # A clean stop: a SIGKILL would leave this instance's jail cgroups behind
  # for a next start that never comes.
  def close
    stop
    FileUtils.rm_rf(@data_dir)
  end
end

def start_server(env = {}, port: 0)
  TestServer.new(env, port: port).start
end

# A git repository whose first commit is tests/fixtures/<fixture>; its file:// URL.
def git_repo(fixture)
  dir = Dir.mktmpdir("skybridge-ruby-repo-")
  FileUtils.cp_r(File.join(ROOT, "tests", "fixtures", fixture, "."), dir)
  Dir.chdir(dir) do
    system("git", "init", "-q", "-b", "main", exception: true)
    system("git", "add", "-A", exception: true)
    system("git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "initial", exception: true)
  end
  "file://#{dir}"
end

# The test guest module (built for WASI by the Rust harness), base64.
def guest_module
  @guest_module ||= Base64.strict_encode64(File.binread(required_env("SKYBRIDGE_TEST_GUEST")))
end
