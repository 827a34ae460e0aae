# frozen_string_literal: true

require_relative "helper"
require "rbconfig"

# `gem build` makes a gem that `gem install --local` installs with no network
# and no compiler; RBS signatures validate.
class TestPackage < Minitest::Test
  SDK = File.expand_path("..", __dir__)

  def test_gem_builds_and_installs_offline
    Dir.mktmpdir("skybridge-gem-") do |work|
      %w[lib sig skybridge.gemspec README.md].each { |f| FileUtils.cp_r(File.join(SDK, f), work) }
      out, status = Open3.capture2e("gem", "build", "skybridge.gemspec", chdir: work)
      assert status.success?, out
      gem = Dir[File.join(work, "skybridge-*.gem")].first
      refute_nil gem, out
      home = File.join(work, "home")
      env = { "GEM_HOME" => home, "GEM_PATH" => home }
      # Any attempt to reach a network during the install would fail.
      no_network = env.merge("http_proxy" => "http://127.0.0.1:9", "https_proxy" => "http://127.0.0.1:9")
      out, status = Open3.capture2e(no_network, "gem", "install", "--local", "--no-document", "--install-dir", home, gem)
      assert status.success?, out
      server = start_server
      begin
        script = 'require "skybridge"; c = Skybridge::Client.new(url: ARGV[0]); ' \
                 'puts c.get_liveness.status; begin; c.get_function("nope"); rescue Skybridge::NotFoundError => e; puts e.code; end'
        out, status = Open3.capture2e(env, RbConfig.ruby, "-e", script, server.url, chdir: work)
        assert status.success?, out
        assert_equal %w[ok function_not_found], out.split
      ensure
        server.close
      end
    end
  end

  def test_rbs_signatures_validate
    rbs = %w[rbs rbs3.1].find { |c| system("which #{c} > /dev/null 2>&1") } or flunk "rbs is not installed"
    out, status = Open3.capture2e(rbs, "-I", "sig", "validate", "--silent", chdir: SDK)
    assert status.success?, out
  end
end
