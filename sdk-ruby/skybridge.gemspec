# frozen_string_literal: true

require_relative "lib/skybridge/version"

native = File.join(__dir__, "lib", "skybridge", "skybridge_native.so")
unless File.exist?(native)
  abort "lib/skybridge/skybridge_native.so is missing: `bash sdk-ruby/build.sh` builds it (and this gem)"
end

Gem::Specification.new do |s|
  s.name = "skybridge"
  s.version = Skybridge::VERSION
  s.summary = "Ruby client for the Skybridge Function-as-a-Service API"
  s.description = "One method per API operation, generated from Skybridge's OpenAPI document; " \
                  "requests made by the Rust client in a native extension that releases the GVL."
  s.authors = ["Skybridge"]
  s.license = "Apache-2.0"
  s.required_ruby_version = ">= 3.1"
  # The extension is built by `bash sdk-ruby/build.sh` (cargo, in the
  # repository's workspace) and shipped in the gem, so installing it compiles
  # nothing and needs no network.
  s.platform = Gem::Platform.local
  s.files = Dir["lib/**/*.rb"] + ["lib/skybridge/skybridge_native.so"] + Dir["sig/**/*.rbs"] + ["README.md"]
  s.require_paths = ["lib"]
end
