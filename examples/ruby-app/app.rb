# frozen_string_literal: true

# Deploys the Go functions in ../go-functions from a local git repository,
# invokes one synchronously and one asynchronously, and handles a function
# that does not exist. Run a server first (bash scripts/serve.sh), then:
#   ruby -I../../sdk-ruby/lib app.rb     (or with the gem installed: ruby app.rb)
# SKYBRIDGE_URL picks another server.

require "fileutils"
require "tmpdir"
require "skybridge"

# A git repository holding ../go-functions (or SKYBRIDGE_EXAMPLE_REPO's).
def local_repo
  return ENV["SKYBRIDGE_EXAMPLE_REPO"] if ENV["SKYBRIDGE_EXAMPLE_REPO"]

  dir = Dir.mktmpdir("go-functions-")
  FileUtils.cp_r(File.join(__dir__, "..", "go-functions", "."), dir)
  Dir.chdir(dir) do
    system("git", "init", "-q", "-b", "main", exception: true)
    system("git", "add", "-A", exception: true)
    system("git", "-c", "user.name=example", "-c", "user.email=example@example.com", "commit", "-qm", "functions",
           exception: true)
  end
  "file://#{dir}"
end

client = Skybridge::Client.new # SKYBRIDGE_URL, default http://127.0.0.1:3280
repo = local_repo
suffix = Time.now.to_i.to_s(36) + rand(1000).to_s
geo = "ruby-geo-#{suffix}"
hello = "ruby-hello-#{suffix}"
begin
  client.create_function(name: geo, backend: "wasm", source: { type: "go", repo: repo, handler: "Encode" })
  client.create_function(name: hello, backend: "wasm", source: { type: "go", repo: repo, handler: "Hello" })
  begin
    client.deploy_and_wait(geo)
    client.deploy_and_wait(hello)
  rescue Skybridge::DeploymentFailedError => e
    warn e.deployment.build_log
    raise
  end

  # Sync: the finished execution.
  run = client.invoke(geo, input: [57.64911, 10.40744])
  puts "geohash #{run.output} (#{run.duration_ms} ms)"

  # Async: queued at once, then waited for.
  queued = client.invoke_async(hello, input: "Ada")
  done = client.wait_for(queued.id, timeout: 30)
  puts "async #{done.output}"

  # Errors are classes.
  begin
    client.get_function("no-such-function")
  rescue Skybridge::NotFoundError => e
    puts "not found: #{e.code} (request #{e.request_id})"
  end
ensure
  [geo, hello].each do |name|
    client.delete_function(name)
  rescue Skybridge::Error
    nil
  end
end
