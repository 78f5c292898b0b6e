# Debian packages (CPack): `tools/package` builds edgebed_<version>_<arch>.deb.
# /usr/bin/edgebed; /usr/share/edgebed/{scenarios,decoders,backbones,examples,ansible}; systemd units
# edgebed-server.service and edgebed-node@.service; /etc/edgebed (scenario, environment files,
# keys/); the edgebed system user (postinst). Depends on the runtime libraries the binary links
# (dpkg-shlibdeps), so `apt-get install ./edgebed_*.deb` pulls them.
include(GNUInstallDirs)
set(EDGEBED_SHARE ${CMAKE_INSTALL_DATADIR}/edgebed)
install(TARGETS edgebed RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/scenarios/ DESTINATION ${EDGEBED_SHARE}/scenarios FILES_MATCHING PATTERN "*.toml")
install(FILES ${PROJECT_SOURCE_DIR}/codecs/decoders/amp_da_net_follow.pt ${PROJECT_SOURCE_DIR}/codecs/decoders/amp_da_net_freecode.pt ${PROJECT_SOURCE_DIR}/codecs/decoders/amp_da_net.pt
        DESTINATION ${EDGEBED_SHARE}/decoders)
install(FILES ${PROJECT_SOURCE_DIR}/splitnets/backbones/irbnet_c0-4.pt DESTINATION ${EDGEBED_SHARE}/backbones)
install(FILES ${PROJECT_SOURCE_DIR}/examples/your_model.py ${PROJECT_SOURCE_DIR}/examples/your_model.toml
              ${PROJECT_SOURCE_DIR}/examples/cluster.toml DESTINATION ${EDGEBED_SHARE}/examples)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/tools/deploy/ansible/ DESTINATION ${EDGEBED_SHARE}/ansible)
install(FILES ${PROJECT_SOURCE_DIR}/tools/deploy/systemd/edgebed-server.service
              ${PROJECT_SOURCE_DIR}/tools/deploy/systemd/edgebed-node@.service
        DESTINATION lib/systemd/system)
install(FILES ${PROJECT_SOURCE_DIR}/scenarios/default.toml DESTINATION /etc/edgebed RENAME scenario.toml)
install(FILES ${PROJECT_SOURCE_DIR}/tools/deploy/etc/server.env ${PROJECT_SOURCE_DIR}/tools/deploy/etc/node.env.example
        DESTINATION /etc/edgebed)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/docs/raspberry-pi.md ${PROJECT_SOURCE_DIR}/docs/your-model.md
              ${PROJECT_SOURCE_DIR}/docs/strategies.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR})

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME edgebed)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "edgebed developers <edgebed@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "testbed for federated and split learning over a simulated wireless uplink")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # edgebed_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION science)
if(EDGEBED_CROSS_ARM64)
  # dpkg-shlibdeps reads this machine's package database, which has no arm64 libraries: the runtime
  # packages are named here, as dpkg-shlibdeps computes them for the amd64 package.
  set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE arm64)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS OFF)
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser, systemd, libc6 (>= 2.34), libfmt9 (>= 9.1.0+ds1), libgcc-s1 (>= 4.0), libliquid1 (>= 1.5.0), libprotobuf32 (>= 3.21.12), libspdlog1.10-fmt9, libstdc++6 (>= 12), libtomlplusplus3 (>= 3.2.0), libtorch1.13 (>= 1.13.1+dfsg), libzip4 (>= 1.3.0), libzmq5 (>= 4.1.2), zlib1g (>= 1:1.2.6)")
else()
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser, systemd")
endif()
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "gnuplot-nox, dataset-fashion-mnist, iproute2")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "ansible-core")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA "${PROJECT_SOURCE_DIR}/tools/deploy/debian/postinst;${PROJECT_SOURCE_DIR}/tools/deploy/debian/prerm;${PROJECT_SOURCE_DIR}/tools/deploy/debian/conffiles")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
include(CPack)
